"""A session that is SIGKILLed leaves no broker running, and the next run removes its folders."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testbed.runners.reaper import is_same_process, process_start_time, reap_stale_runs

from ..interrupts import terminal_signals, why_still_running

OWNER = r"""
import json, sys, time
from testbed.services import nats, rabbitmq, redis
from testbed.config import ServiceSettings

r = redis.RedisServer(ServiceSettings(engine="redis")).start()
n = nats.NatsServer(ServiceSettings(engine="nats")).start()
q = rabbitmq.RabbitMQServer(ServiceSettings(engine="rabbitmq")).start()
pids = [r.process.pid, n.process.pid, q.process.pid, q.epmd.pid]
print(json.dumps({"pids": pids, "dirs": [str(r.run_dir), str(n.run_dir), str(q.run_dir)]}), flush=True)
time.sleep(600)
"""


def test_sigkilled_owner_takes_its_brokers_down_and_the_reaper_removes_the_folders(tmp_path: Path) -> None:
    env = {**os.environ, "TESTBED_RUNS_DIR": str(tmp_path / "runs")}
    with subprocess.Popen([sys.executable, "-c", OWNER], stdout=subprocess.PIPE, env=env, text=True) as owner:
        try:
            assert owner.stdout is not None
            line = owner.stdout.readline()
            assert line, "the owner process died before its servers were ready"
            started = json.loads(line)
            starts = {pid: process_start_time(pid) for pid in started["pids"]}
            assert all(starts.values())
        finally:
            owner.send_signal(signal.SIGKILL)
            owner.wait(60)
    deadline = time.monotonic() + 30
    while any(is_same_process(p, s) for p, s in starts.items()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p for p, s in starts.items() if is_same_process(p, s)] == []  # parent-death signal did it
    assert_reaped(env["TESTBED_RUNS_DIR"], started["dirs"])


def assert_reaped(runs_dir: str, dirs: list[str]) -> None:
    """The next run's reaper removes the folders the dead run left behind."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TESTBED_RUNS_DIR", runs_dir)
        cleaned = reap_stale_runs()
    for d in dirs:
        assert not Path(d).exists(), cleaned


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_owner_stops_its_brokers(sig: int, tmp_path: Path) -> None:
    # SIGINT is what Ctrl-C sends to the foreground process; the servers are in their own session.
    code = OWNER.replace("rabbitmq.RabbitMQServer", "None and rabbitmq.RabbitMQServer").replace(
        "q.process.pid, q.epmd.pid", "").replace(', str(q.run_dir)', "")
    env = {**os.environ, "TESTBED_RUNS_DIR": str(tmp_path / "runs"), "PYTHONFAULTHANDLER": "1"}
    err = tmp_path / "owner.err"
    with open(err, "w") as errors, subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                                    stderr=errors, env=env, text=True,
                                                    preexec_fn=terminal_signals) as owner:
        assert owner.stdout is not None
        started = json.loads(owner.stdout.readline())
        starts = {pid: process_start_time(pid) for pid in started["pids"]}
        owner.send_signal(sig)
        try:
            owner.wait(60)
        except subprocess.TimeoutExpired:
            pytest.fail(why_still_running(owner, err))
    deadline = time.monotonic() + 10
    while any(is_same_process(p, s) for p, s in starts.items()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p for p, s in starts.items() if is_same_process(p, s)] == []
    assert_reaped(env["TESTBED_RUNS_DIR"], started["dirs"])
