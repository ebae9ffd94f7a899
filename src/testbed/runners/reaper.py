"""Records of what a run started, so the next run can clean up after a run that was SIGKILLed.

Each run writes one JSON record listing its server processes (pid + kernel start time, so a recycled
pid is never killed) and folders. A record whose owner is gone is reaped: processes stopped, folders
removed, record deleted.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


def records_dir() -> Path:
    d = Path(os.environ.get("TESTBED_RUNS_DIR") or Path(tempfile.gettempdir()) / f"testbed-runs-{os.geteuid()}")
    d.mkdir(parents=True, exist_ok=True)
    return d


def process_start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), None if it does not exist or has exited."""
    # Plain os calls: this runs before every test (is the server still there?), so it must be cheap.
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
    except OSError:
        return None
    try:
        raw = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    # Field 22; the command name (field 2) may contain spaces and parens, so split after the last ')'.
    fields = raw[raw.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):  # a zombie has exited; only its parent has not collected it yet
        return None
    return int(fields[19])


def is_same_process(pid: int, start_time: int | None) -> bool:
    current = process_start_time(pid)
    return current is not None and (start_time is None or current == start_time)


def gone_within(pid: int, start_time: int | None, timeout: float) -> bool:
    """Whether the process has exited, allowing it ``timeout`` seconds to finish.

    A killed server closes its sockets a moment before /proc shows it as exited: a client that saw the
    connection drop asks this to tell "the server died" from "the server is fine".
    """
    deadline = time.monotonic() + timeout
    while is_same_process(pid, start_time):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)
    return True


@dataclass
class RunRecord:
    """What one run owns. Saved on every change so a SIGKILL at any point leaves an accurate record."""

    owner_pid: int = field(default_factory=os.getpid)
    owner_start: int | None = None
    processes: list[dict[str, object]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    file: Path | None = None

    def __post_init__(self) -> None:
        if self.owner_start is None:
            self.owner_start = process_start_time(self.owner_pid)
        if self.file is None:
            self.file = records_dir() / f"run-{self.owner_pid}-{self.owner_start}.json"

    def add_process(self, pid: int, name: str, stop_signal: int) -> None:
        self.processes.append(
            {"pid": pid, "start": process_start_time(pid), "name": name, "stop_signal": stop_signal}
        )
        self.save()

    def remove_process(self, pid: int) -> None:
        self.processes = [p for p in self.processes if p["pid"] != pid]
        self.save()

    def add_path(self, path: Path | str) -> None:
        self.paths.append(str(path))
        self.save()

    def remove_path(self, path: Path | str) -> None:
        self.paths = [p for p in self.paths if p != str(path)]
        self.save()

    def save(self) -> None:
        assert self.file is not None
        if not self.processes and not self.paths:
            self.file.unlink(missing_ok=True)
            return
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"owner_pid": self.owner_pid, "owner_start": self.owner_start,
                        "processes": self.processes, "paths": self.paths})
        )
        tmp.replace(self.file)


_current: RunRecord | None = None


def current_record() -> RunRecord:
    """This process's record (created on first use)."""
    global _current
    if _current is None or _current.owner_pid != os.getpid():
        _current = RunRecord()
    return _current


def _stop_pid(pid: int, start: int | None, sig: int, grace: float = 5.0) -> None:
    if not is_same_process(pid, start):
        return
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not is_same_process(pid, start):
            return
        time.sleep(0.01)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def reap_stale_runs() -> list[str]:
    """Stop the processes and remove the folders of runs whose owner no longer exists.

    Returns a line per thing cleaned, for the log / `testbed doctor`.
    """
    cleaned: list[str] = []
    for rec_file in sorted(records_dir().glob("run-*.json")):
        try:
            data = json.loads(rec_file.read_text())
        except (OSError, ValueError):
            rec_file.unlink(missing_ok=True)
            continue
        if is_same_process(int(data["owner_pid"]), data.get("owner_start")):
            continue  # its owner is alive: not ours to touch
        for proc in data.get("processes", []):
            pid = int(proc["pid"])
            if is_same_process(pid, proc.get("start")):
                _stop_pid(pid, proc.get("start"), int(proc.get("stop_signal", signal.SIGTERM)))
                cleaned.append(f"stopped {proc.get('name')} pid {pid} left by run {data['owner_pid']}")
        for path in data.get("paths", []):
            if os.path.exists(path):
                shutil.rmtree(path, ignore_errors=True)
                cleaned.append(f"removed {path} left by run {data['owner_pid']}")
        rec_file.unlink(missing_ok=True)
    return cleaned
