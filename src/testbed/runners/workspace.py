"""Where server data directories live: a RAM-backed tmpfs when there is one with room, else disk.

Test data is disposable, and creating files is 10-20x faster on tmpfs than on a VM disk (initdb copies,
CREATE DATABASE, TRUNCATE all create files).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from testbed.errors import ConfigError

SHM = Path("/dev/shm")
MIN_FREE_BYTES = 1 << 30  # below 1 GiB free, a tmpfs is too tight for a cluster plus clones


@dataclass(frozen=True)
class DataLocation:
    """A base folder for data dirs and why it was chosen (shown by `testbed doctor`)."""

    path: Path
    kind: str  # "tmpfs" or "disk"
    reason: str


def _is_tmpfs(path: Path) -> bool:
    try:
        mounts = Path("/proc/mounts").read_text()
    except OSError:
        return False
    best = ""
    fstype = ""
    target = str(path.resolve())
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        mnt = parts[1]
        if (target == mnt or target.startswith(mnt.rstrip("/") + "/")) and len(mnt) > len(best):
            best, fstype = mnt, parts[2]
    return fstype == "tmpfs"


def tmpfs_candidate() -> tuple[Path | None, str]:
    """The shared-memory tmpfs if usable, with the reason when it is not."""
    if not SHM.is_dir():
        return None, f"{SHM} does not exist"
    if not _is_tmpfs(SHM):
        return None, f"{SHM} is not a tmpfs"
    if not os.access(SHM, os.W_OK | os.X_OK):
        return None, f"{SHM} is not writable"
    free = shutil.disk_usage(SHM).free
    if free < MIN_FREE_BYTES:
        return None, f"{SHM} has only {free // (1 << 20)} MiB free (need {MIN_FREE_BYTES >> 20} MiB)"
    return SHM, f"{SHM} is a tmpfs with {free // (1 << 20)} MiB free"


def data_location(choice: str = "auto") -> DataLocation:
    """Resolve a data_dir setting ("auto", "tmpfs", "disk" or a path) to a base folder."""
    if choice in ("auto", "tmpfs"):
        path, reason = tmpfs_candidate()
        if path is not None:
            return DataLocation(path, "tmpfs", reason)
        if choice == "tmpfs":
            raise ConfigError(f"data_dir = 'tmpfs' but {reason}. Use data_dir = 'auto' or 'disk'.")
        return DataLocation(Path(tempfile.gettempdir()), "disk", f"no usable tmpfs ({reason})")
    if choice == "disk":
        return DataLocation(Path(tempfile.gettempdir()), "disk", "data_dir = 'disk' in config")
    path = Path(choice)
    if not path.is_dir():
        raise ConfigError(
            f"data_dir = {choice!r}: no such folder. Use 'auto', 'tmpfs', 'disk' or an existing folder "
            "(relative paths are relative to the project root)."
        )
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"data_dir = {choice!r}: the folder is not writable. Choose a writable folder.")
    return DataLocation(path, "tmpfs" if _is_tmpfs(path) else "disk", f"data_dir = {choice!r} in config")


def new_run_dir(location: DataLocation, prefix: str) -> Path:
    """A fresh folder for one server's files, world-searchable so a dropped-privilege server can enter."""
    try:
        d = Path(tempfile.mkdtemp(prefix=f"testbed-{prefix}-", dir=location.path))
    except OSError as exc:
        raise ConfigError(
            f"cannot create a data folder in {location.path} ({location.reason}): {exc.strerror}. Free room "
            "there, or choose another place: data_dir = 'disk' or a folder in [tool.testbed], or "
            "TESTBED_DATA_DIR=/path."
        ) from None
    d.chmod(0o755)
    return d


def cache_root(configured: Path | None = None) -> Path:
    """The user cache folder (initdb and template caches): TESTBED_CACHE_DIR, config, or XDG."""
    env = os.environ.get("TESTBED_CACHE_DIR")
    if env:
        root = Path(env)
    elif configured is not None:
        root = configured
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "testbed"
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"the cache folder {root} is not writable ({exc.strerror}). testbed caches initialised and "
            "migrated server data there; point it at a writable folder: TESTBED_CACHE_DIR=/path or "
            "[tool.testbed] cache_dir = '/path'."
        ) from None
    return root
