"""Servers die with the session: normal exit, Ctrl-C, SIGTERM; a SIGKILLed run is cleaned by the next."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testbed.runners.reaper import is_same_process, process_start_time, reap_stale_runs

from ..interrupts import terminal_signals, why_still_running

HANGING_TEST = """
import os, time
from pathlib import Path

def test_hang(postgres, db):
    Path("server.info").write_text(f"{postgres.endpoint.pid} {os.path.dirname(postgres.endpoint.socket_dir)}")
    time.sleep(120)
"""


def _start_hanging_run(project: pytest.Pytester) -> tuple[subprocess.Popen[bytes], int, Path]:
    project.makepyfile(test_hang=HANGING_TEST)
    log = project.path / "run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
            cwd=project.path, stdout=out, stderr=subprocess.STDOUT, preexec_fn=terminal_signals,
            env={**os.environ, "PYTHONFAULTHANDLER": "1"},
        )
    info = project.path / "server.info"
    deadline = time.monotonic() + 60
    while not info.exists() or not info.read_text():
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the run never started its server"
        time.sleep(0.02)
    pid, run_dir = info.read_text().split()
    return proc, int(pid), Path(run_dir)


def _wait_gone(pid: int, start: int | None, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_same_process(pid, start):
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_run_leaves_no_server_and_no_folder(project: pytest.Pytester, sig: int) -> None:
    proc, pid, run_dir = _start_hanging_run(project)
    start = process_start_time(pid)
    assert run_dir.exists()
    proc.send_signal(sig)
    try:
        proc.wait(120)
    except subprocess.TimeoutExpired:
        pytest.fail(why_still_running(proc, project.path / "run.log"))
    assert _wait_gone(pid, start), "postgres outlived the interrupted session"
    assert not run_dir.exists(), "the server's folder was left behind"


def test_sigkilled_run_is_cleaned_by_the_next(project: pytest.Pytester) -> None:
    proc, pid, run_dir = _start_hanging_run(project)
    start = process_start_time(pid)
    proc.kill()
    proc.wait(120)
    # The parent-death signal stops the postmaster even though no finalizer ran...
    assert _wait_gone(pid, start), "postgres outlived its SIGKILLed owner"
    assert run_dir.exists(), "nothing to clean: the test would prove nothing"
    # ...and the next run (here: its first step) removes what the killed run left.
    cleaned = reap_stale_runs()
    assert not run_dir.exists()
    assert any(str(run_dir) in line for line in cleaned)


def test_normal_exit_leaves_nothing(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import os
        from pathlib import Path

        def test_x(postgres, db):
            Path("server.info").write_text(f"{postgres.endpoint.pid} {os.path.dirname(postgres.endpoint.socket_dir)}")
        """
    )
    project.runpytest_subprocess().assert_outcomes(passed=1)
    pid, run_dir = (project.path / "server.info").read_text().split()
    assert _wait_gone(int(pid), None, timeout=5)
    assert not Path(run_dir).exists()
    assert os.path.exists(project.path)
