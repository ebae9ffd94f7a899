"""Records of what a run started, so the next run can clean up after a run that was SIGKILLed.

Each run writes one JSON record listing its server processes (pid, kernel start time and command, so
a recycled pid is never killed), its folders and its SysV shared memory segments. A record whose owner
is gone is reaped: processes stopped, folders removed, segments released, record deleted.

A record is trusted only as far as it can be checked: records live in a private folder of the current
user, a folder is removed only when it carries the marker file this run wrote into it, and a process is
stopped only when its start time and its command still match what was recorded.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shutil
import signal
import stat
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from testbed.runners.ownership import private_folder

MARKER = ".testbed-run"  # written into every folder a run records: its content is the run's id
_IPC_RMID = 0


def records_dir() -> Path:
    """The private folder of run records (TESTBED_RUNS_DIR, else <tmp>/testbed-runs-<euid>)."""
    base = os.environ.get("TESTBED_RUNS_DIR") or Path(tempfile.gettempdir()) / f"testbed-runs-{os.geteuid()}"
    return private_folder(Path(base), "run records", env_var="TESTBED_RUNS_DIR")


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


def process_command(pid: int) -> str:
    """The command line of ``pid`` (arguments joined by spaces), "" if it cannot be read."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return ""


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


def _matches_command(entry: dict[str, object]) -> bool:
    """Whether the live process ``entry['pid']`` still runs what this run started there.

    Servers rewrite their titles (redis-server shows its address) and scripts exec the real program
    (rabbitmq-server execs the Erlang VM), so either the program name or a folder of the run must appear.
    """
    command = process_command(int(str(entry["pid"])))
    if not command:
        return False
    program = os.path.basename(command.split(" ", 1)[0])
    if entry.get("program") and program == entry["program"]:
        return True
    tokens = entry.get("tokens")
    return isinstance(tokens, list) and any(str(t) and str(t) in command for t in tokens)


_record_lock = threading.RLock()  # RunRecord changes and saves, from any thread


def _fresh_lock() -> None:  # a child forked while another thread held the lock must not inherit it held
    global _record_lock
    _record_lock = threading.RLock()


os.register_at_fork(after_in_child=_fresh_lock)


@dataclass
class RunRecord:
    """What one run owns. Saved on every change so a SIGKILL at any point leaves an accurate record."""

    owner_pid: int = field(default_factory=os.getpid)
    owner_start: int | None = None
    processes: list[dict[str, object]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    shm: list[dict[str, int]] = field(default_factory=list)
    file: Path | None = None

    def __post_init__(self) -> None:
        if self.owner_start is None:
            self.owner_start = process_start_time(self.owner_pid)
        if self.file is None:
            self.file = records_dir() / f"run-{self.run_id}.json"

    @property
    def run_id(self) -> str:
        return f"{self.owner_pid}-{self.owner_start}"

    def add_process(self, pid: int, name: str, stop_signal: int, argv: list[str] | None = None,
                    tokens: list[str] | None = None) -> None:
        """Record a child process: what it runs (program name and folders of the run it names)."""
        program = os.path.basename(argv[0]) if argv else ""
        with _record_lock:
            self.processes.append({"pid": pid, "start": process_start_time(pid), "name": name,
                                   "stop_signal": stop_signal, "program": program, "tokens": tokens or []})
            self._save()

    def remove_process(self, pid: int) -> None:
        with _record_lock:
            self.processes = [p for p in self.processes if p["pid"] != pid]
            self._save()

    def add_path(self, path: Path | str) -> None:
        """Record a folder to remove if this run dies; it gets the run's marker file."""
        if os.path.isdir(path):
            marker = Path(path) / MARKER
            marker.write_text(self.run_id)
        with _record_lock:
            self.paths.append(str(path))
            self._save()

    def remove_path(self, path: Path | str) -> None:
        with _record_lock:
            self.paths = [p for p in self.paths if p != str(path)]
            self._save()

    def add_shm(self, shmid: int, creator_pid: int) -> None:
        """Record a SysV shared memory segment a server of this run created (PostgreSQL's interlock)."""
        with _record_lock:
            self.shm.append({"shmid": shmid, "cpid": creator_pid})
            self._save()

    def remove_shm(self, shmid: int) -> None:
        with _record_lock:
            self.shm = [s for s in self.shm if s["shmid"] != shmid]
            self._save()

    def save(self) -> None:
        with _record_lock:
            self._save()

    def _save(self) -> None:
        # One writer at a time: under xdist the controller stops its servers on several threads at once, and
        # two saves through one temporary file lost the race ("No such file" on the second rename).
        assert self.file is not None
        if not self.processes and not self.paths and not self.shm:
            self.file.unlink(missing_ok=True)
            return
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"owner_pid": self.owner_pid, "owner_start": self.owner_start,
                        "processes": self.processes, "paths": self.paths, "shm": self.shm})
        )
        tmp.replace(self.file)


_current: RunRecord | None = None


def current_record() -> RunRecord:
    """This process's record (created on first use)."""
    global _current
    with _record_lock:
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


def _owned_folder(path: str, run_id: str) -> bool:
    """Whether ``path`` is a real folder (not a symlink) carrying the marker of run ``run_id``."""
    try:
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode):
            return False
        marker = os.path.join(path, MARKER)
        if not stat.S_ISREG(os.lstat(marker).st_mode):
            return False
        with open(marker, encoding="utf-8") as f:
            return f.read(200).strip() == run_id
    except OSError:
        return False


def shm_segments() -> dict[int, dict[str, int]]:
    """SysV shared memory segments by id: creator pid, attach count, owner uid (from /proc/sysvipc/shm)."""
    try:
        lines = Path("/proc/sysvipc/shm").read_text().splitlines()
    except OSError:
        return {}
    header = lines[0].split() if lines else []
    out: dict[int, dict[str, int]] = {}
    for line in lines[1:]:
        values = dict(zip(header, line.split(), strict=False))
        try:
            out[int(values["shmid"])] = {"cpid": int(values["cpid"]), "nattch": int(values["nattch"]),
                                         "uid": int(values["uid"])}
        except (KeyError, ValueError):
            continue
    return out


def release_shm(shmid: int) -> bool:
    """Remove a SysV segment (IPC_RMID); False if it is not there or may not be removed."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return int(libc.shmctl(ctypes.c_int(shmid), _IPC_RMID, None)) == 0


def reap_stale_runs() -> list[str]:
    """Stop the processes, remove the folders and release the segments of runs whose owner is gone.

    Returns a line per thing cleaned, for the log / `testbed doctor`.
    """
    cleaned: list[str] = []
    for rec_file in sorted(records_dir().glob("run-*.json")):
        try:
            data = json.loads(rec_file.read_text())
            owner = int(data["owner_pid"])
        except (OSError, ValueError, KeyError, TypeError):
            rec_file.unlink(missing_ok=True)
            continue
        if is_same_process(owner, data.get("owner_start")):
            continue  # its owner is alive: not ours to touch
        run_id = f"{owner}-{data.get('owner_start')}"
        for proc in data.get("processes", []):
            pid = int(proc["pid"])
            if is_same_process(pid, proc.get("start")) and proc.get("start") is not None and _matches_command(proc):
                _stop_pid(pid, proc.get("start"), int(proc.get("stop_signal", signal.SIGTERM)))
                cleaned.append(f"stopped {proc.get('name')} pid {pid} left by run {owner}")
        for path in data.get("paths", []):
            if _owned_folder(str(path), run_id):
                shutil.rmtree(path, ignore_errors=True)
                cleaned.append(f"removed {path} left by run {owner}")
        live = shm_segments()
        attached = []
        for seg in data.get("shm", []):
            found = live.get(int(seg["shmid"]))
            if not found or found["cpid"] != int(seg["cpid"]):
                continue  # gone, or the id now belongs to another segment: not ours
            if found["nattch"]:
                attached.append(seg)  # the server's last processes are still exiting: next time
            elif release_shm(int(seg["shmid"])):
                cleaned.append(f"released shared memory segment {seg['shmid']} left by run {owner}")
        if attached:
            rec_file.write_text(json.dumps({**data, "processes": [], "paths": [], "shm": attached}))
        else:
            rec_file.unlink(missing_ok=True)
    return cleaned
