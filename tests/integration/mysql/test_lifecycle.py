"""A server never outlives its owner: SIGKILL of the owning process, then the next run's reaper."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testbed.runners.reaper import is_same_process, reap_stale_runs

OWNER = r"""
import json, sys, time
from testbed.config import ServiceSettings
from testbed.services.mysql import MysqlServer
from testbed.runners.reaper import process_start_time
server = MysqlServer(ServiceSettings(engine="mysql")).start()
print(json.dumps({"pid": server.process.pid, "start": process_start_time(server.process.pid),
                  "run_dir": str(server.run_dir)}), flush=True)
time.sleep(120)
"""


@pytest.mark.slow
def test_sigkilled_owner_takes_its_server_along_and_the_reaper_removes_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**os.environ, "TESTBED_RUNS_DIR": str(tmp_path / "runs")}
    owner = subprocess.Popen([sys.executable, "-c", OWNER], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert owner.stdout is not None
        info = json.loads(owner.stdout.readline())
        assert is_same_process(info["pid"], info["start"])
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
        deadline = time.monotonic() + 10
        while is_same_process(info["pid"], info["start"]) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not is_same_process(info["pid"], info["start"]), "mariadbd outlived its SIGKILLed owner"
        assert Path(info["run_dir"]).exists()  # nobody cleaned up yet...
        monkeypatch.setenv("TESTBED_RUNS_DIR", env["TESTBED_RUNS_DIR"])
        cleaned = reap_stale_runs()  # ...until the next run starts
        assert not Path(info["run_dir"]).exists()
        assert any(info["run_dir"] in line for line in cleaned)
    finally:
        if owner.poll() is None:
            owner.kill()
        owner.wait(10)
        if owner.stdout is not None:
            owner.stdout.close()
