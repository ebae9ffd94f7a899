"""A run's record is changed from several threads at once (the xdist controller stops its servers in
parallel): every change lands and none fails."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from testbed.runners.reaper import RunRecord


def test_changes_from_many_threads_all_land(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTBED_RUNS_DIR", str(tmp_path / "runs"))
    record = RunRecord()
    record.add_path(str(tmp_path / "keep-me"))  # keeps the file in place while the threads come and go
    errors: list[BaseException] = []

    def churn(base: int) -> None:
        try:
            for i in range(30):
                record.add_shm(base + i, 1)
                record.remove_shm(base + i)
            record.add_shm(base, 1)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=churn, args=(n * 1000,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert record.file is not None
    saved = json.loads(record.file.read_text())
    assert sorted(s["shmid"] for s in saved["shm"]) == [n * 1000 for n in range(6)]
