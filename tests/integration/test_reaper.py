"""The reaper trusts a run record only as far as it can check it: its folder, markers, commands."""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testbed.errors import ConfigError
from testbed.runners import reaper
from testbed.runners.ownership import private_folder


@pytest.fixture(autouse=True)
def _private_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Other xdist workers reap the shared records folder while starting servers: plant records privately.
    monkeypatch.setenv("TESTBED_RUNS_DIR", str(tmp_path / "records"))


def _wait_for_command(pid: int) -> None:
    # Right after fork/exec, /proc/<pid>/cmdline can still be empty for a moment.
    deadline = time.monotonic() + 5
    while not reaper.process_command(pid) and time.monotonic() < deadline:
        time.sleep(0.001)


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_forged_record_removes_nothing_and_kills_nothing(tmp_path: Path) -> None:
    victim = tmp_path / "victim"  # outside testbed's folders, no marker
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    lookalike = tmp_path / "testbed-pg-forged"  # named like a run folder, but no marker of that run
    lookalike.mkdir()
    (lookalike / reaper.MARKER).write_text("someone-else")
    link = tmp_path / "testbed-pg-link"  # a symlink to a folder carrying a marker
    target = tmp_path / "target"
    target.mkdir()
    link.symlink_to(target)
    sleeper = subprocess.Popen(["sleep", "60"])
    _wait_for_command(sleeper.pid)
    try:
        owner = _dead_pid()
        record = {
            "owner_pid": owner, "owner_start": 1,
            "processes": [{"pid": sleeper.pid, "start": reaper.process_start_time(sleeper.pid), "name": "postgres",
                           "stop_signal": signal.SIGTERM, "program": "postgres", "tokens": ["/nonexistent"]}],
            "paths": [str(victim), str(lookalike), str(link), "/"],
            "shm": [],
        }
        (target / reaper.MARKER).write_text(f"{owner}-1")
        (reaper.records_dir() / f"run-{owner}-1.json").write_text(json.dumps(record))
        cleaned = reaper.reap_stale_runs()
        assert cleaned == []
        assert (victim / "precious.txt").read_text() == "keep me"
        assert lookalike.is_dir() and target.is_dir() and link.is_symlink()
        assert sleeper.poll() is None, "a process whose command does not match the record was killed"
        assert not (reaper.records_dir() / f"run-{owner}-1.json").exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_real_record_of_a_dead_run_is_reaped(tmp_path: Path) -> None:
    owner = _dead_pid()
    folder = tmp_path / "testbed-x-own"
    folder.mkdir()
    (folder / reaper.MARKER).write_text(f"{owner}-1")
    sleeper = subprocess.Popen(["sleep", "60"], cwd=folder)
    _wait_for_command(sleeper.pid)
    try:
        record = {
            "owner_pid": owner, "owner_start": 1,
            "processes": [{"pid": sleeper.pid, "start": reaper.process_start_time(sleeper.pid), "name": "sleep",
                           "stop_signal": signal.SIGTERM, "program": "sleep", "tokens": [str(folder)]}],
            "paths": [str(folder)], "shm": [],
        }
        (reaper.records_dir() / f"run-{owner}-1.json").write_text(json.dumps(record))
        cleaned = reaper.reap_stale_runs()
        assert sleeper.wait(10) == -signal.SIGTERM
        assert not folder.exists()
        assert len(cleaned) == 2, cleaned
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
        sleeper.wait()  # else its ResourceWarning fails whichever test the garbage collector runs in next


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand a folder to another user")
def test_a_records_folder_of_another_user_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    planted = tmp_path / "runs"
    planted.mkdir(mode=0o700)
    nobody = pwd.getpwnam("nobody")
    os.chown(planted, nobody.pw_uid, nobody.pw_gid)
    monkeypatch.setenv("TESTBED_RUNS_DIR", str(planted))
    with pytest.raises(ConfigError, match=r"refusing to use .*runs for run records: it belongs to uid"):
        reaper.records_dir()


@pytest.mark.parametrize("problem", ["group-writable", "symlink"])
def test_an_unsafe_private_folder_is_refused(tmp_path: Path, problem: str) -> None:
    path = tmp_path / "records"
    if problem == "symlink":
        (tmp_path / "elsewhere").mkdir()
        path.symlink_to(tmp_path / "elsewhere")
    else:
        path.mkdir()
        os.chmod(path, 0o775)
    with pytest.raises(ConfigError, match="refusing to use"):
        private_folder(path, "run records")


def test_an_own_folder_readable_by_others_is_narrowed(tmp_path: Path) -> None:
    path = tmp_path / "records"
    path.mkdir()
    os.chmod(path, 0o755)
    private_folder(path, "run records")
    assert path.stat().st_mode & 0o777 == 0o700


KILLED_POSTMASTER = """
import json, os, sys
from testbed.config import ServiceSettings
from testbed.services.postgres import PostgresServer
server = PostgresServer(ServiceSettings(engine="postgres")).start()
print(json.dumps({"pid": server.process.pid, "shmid": server.shmid, "data": str(server.data_dir)}), flush=True)
sys.stdin.read()
"""


def test_a_sigkilled_postmaster_leaves_no_shared_memory(tmp_path: Path) -> None:
    with subprocess.Popen([sys.executable, "-c", KILLED_POSTMASTER], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True, env=dict(os.environ)) as proc:
        try:
            assert proc.stdout is not None
            info = json.loads(proc.stdout.readline())
            assert info["shmid"] is not None and info["shmid"] in reaper.shm_segments()
            assert list((Path(info["data"]) / "pg_dynshmem").iterdir()), "dynamic shared memory not in the data dir"
            # Not in /dev/shm: asked of the server itself, since other tests' servers (xdist) come and go there.
            assert "/dev/shm/PostgreSQL." not in Path(f"/proc/{info['pid']}/maps").read_text()
            os.kill(info["pid"], signal.SIGKILL)  # the server dies first (OOM killer), then its owner
        finally:
            proc.kill()
    deadline = time.monotonic() + 20
    while reaper.shm_segments().get(info["shmid"], {}).get("nattch", 0) and time.monotonic() < deadline:
        time.sleep(0.05)  # the backends notice their postmaster is gone and exit
    assert info["shmid"] in reaper.shm_segments(), "nothing left behind: the test proves nothing"
    cleaned = reaper.reap_stale_runs()
    assert info["shmid"] not in reaper.shm_segments()
    assert any(f"segment {info['shmid']}" in line for line in cleaned), cleaned
