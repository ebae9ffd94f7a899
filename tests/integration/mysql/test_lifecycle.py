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

from ..interrupts import terminal_signals, why_still_running

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
        owner.wait(60)
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
        owner.wait(60)
        if owner.stdout is not None:
            owner.stdout.close()


SLEEPY_TEST = """
import json, os, time

def test_waits_to_be_interrupted(testbed_mysql_server, mysql_db):
    ep = testbed_mysql_server
    with open(os.environ["TESTBED_TEST_INFO"], "w") as f:
        json.dump({"pid": ep.pid, "start": ep.start_time, "log": ep.log_path}, f)
    time.sleep(120)
"""


@pytest.mark.slow
def test_ctrl_c_stops_the_server_and_removes_its_folder(pytester: pytest.Pytester, tmp_path: Path) -> None:
    from testbed.runners.workspace import cache_root

    pytester.makefile(".toml", pyproject="[tool.testbed.mysql]\n")
    pytester.makepyfile(test_sleepy=SLEEPY_TEST)
    info_file = tmp_path / "info.json"
    env = {**os.environ, "TESTBED_TEST_INFO": str(info_file), "TESTBED_CACHE_DIR": str(cache_root())}
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        env.pop(name, None)
    env["PYTHONFAULTHANDLER"] = "1"
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=pytester.path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=terminal_signals)
    try:
        deadline = time.monotonic() + 60
        while not info_file.exists() or not info_file.read_text():
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the test never started"
            time.sleep(0.05)
        time.sleep(0.1)
        info = json.loads(info_file.read_text())
        run_dir = Path(info["log"]).parent
        assert is_same_process(info["pid"], info["start"]) and run_dir.exists()
        proc.send_signal(signal.SIGINT)  # what Ctrl-C in a terminal does to pytest
        try:
            output = proc.communicate(timeout=120)[0]
        except subprocess.TimeoutExpired:
            pytest.fail(why_still_running(proc) + (proc.communicate()[0] or "")[-6000:])
        assert "KeyboardInterrupt" in output
        assert not is_same_process(info["pid"], info["start"]), "mariadbd survived Ctrl-C"
        assert not run_dir.exists(), f"{run_dir} left behind"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
