"""A binary's --version is asked once and remembered across runs (runners/binaries.run_version)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testbed.runners import binaries


def test_the_first_answer_creates_the_cache_and_the_next_run_reads_it(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTBED_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    calls = tmp_path / "calls"
    tool = tmp_path / "fakeserver"
    tool.write_text(f"#!/bin/sh\necho x >> {calls}\necho 'fakeserver 1.2.3'\n")
    tool.chmod(0o755)
    binaries.run_version.cache_clear()
    assert binaries.run_version(str(tool)) == "fakeserver 1.2.3"
    store = tmp_path / "cache" / "versions.json"
    assert list(json.loads(store.read_text()).values()) == ["fakeserver 1.2.3"]  # no cache file before: made now
    binaries.run_version.cache_clear()  # a new run
    assert binaries.run_version(str(tool)) == "fakeserver 1.2.3"
    assert calls.read_text().count("x") == 1  # asked once
