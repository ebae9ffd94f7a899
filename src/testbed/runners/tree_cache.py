"""Folders cached between runs (initdb output, migrated data dirs) and copied per run.

Engine-agnostic: publishing is copy-then-rename, so a concurrent run sees a complete entry or none;
eviction keeps the most recently used entries. A copy that fails (a full disk or tmpfs, a read-only
folder) removes what it wrote and says which folder, how much room it needs and how to move it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from pathlib import Path

from testbed.errors import ServerStartError
from testbed.runners.users import RunAs, chown_tree

CACHE_HINT = "Free room there, or move the cache: TESTBED_CACHE_DIR=/path or [tool.testbed] cache_dir = '/path'."
DATA_HINT = (
    "Free room there, or put server data elsewhere: data_dir = 'disk' or a folder in [tool.testbed] (or "
    "[tool.testbed.<engine>]), or TESTBED_DATA_DIR=/path."
)


def tree_size(path: Path) -> int:
    """Bytes used by the files under ``path`` (what a copy of it needs)."""
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                pass
    return total


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def copy_folder(src: Path, dest: Path, *, what: str, hint: str) -> None:
    """``cp -a src dest``; on failure remove the partial copy and raise an error naming the folder and room."""
    try:
        out = subprocess.run(["cp", "-a", str(src), str(dest)], capture_output=True, text=True)
    except OSError as exc:
        raise ServerStartError(f"could not copy {src} to {dest}: {exc}", boundary="testbed cache") from None
    if out.returncode == 0:
        return
    shutil.rmtree(dest, ignore_errors=True)
    said = (out.stderr or out.stdout).strip().splitlines()
    reason = said[-1] if said else f"cp exited with {out.returncode}"
    room = ""
    if "No space left" in out.stderr or "Disk quota" in out.stderr:
        try:
            free = shutil.disk_usage(dest.parent).free
        except OSError:
            free = 0
        room = f" It needs about {_mib(tree_size(src))}; {_mib(free)} is free there."
    raise ServerStartError(
        f"could not write {what} to {dest.parent}: {reason}.{room} {hint} Nothing partial was left behind.",
        boundary="testbed cache",
    )


def publish_tree(src: Path, dest: Path) -> None:
    """Copy ``src`` to the cache entry ``dest`` atomically (a run that published first wins)."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ServerStartError(
            f"cannot create the cache folder {dest.parent}: {exc.strerror}. {CACHE_HINT}", boundary="testbed cache"
        ) from None
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    copy_folder(src, tmp, what="the server cache", hint=CACHE_HINT)
    try:
        tmp.rename(dest)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # another run published it first: same content


def evict_oldest(folder: Path, keep: int) -> None:
    """Remove all but the ``keep`` most recently used entries of ``folder``."""
    entries = sorted(
        (p for p in folder.iterdir() if not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime, reverse=True,
    )
    for old in entries[keep:]:
        shutil.rmtree(old, ignore_errors=True)


def copy_tree(src: Path, dest: Path, run_as: RunAs | None) -> None:
    """Copy a cached folder for one run, owned by the user the server runs as."""
    copy_folder(src, dest, what="the server's data folder", hint=DATA_HINT)
    want = run_as.uid if run_as else os.geteuid()
    if dest.stat().st_uid != want:
        chown_tree(str(dest), run_as)


def binary_cache_root(engine: str, label: str, binary_path: str, version: str, run_as: RunAs | None,
                      layout: str) -> Path:
    """The cache folder of one server binary: keyed by its real path, version, owner and data layout."""
    import hashlib

    from testbed.runners.workspace import cache_root

    ident = f"{os.path.realpath(binary_path)}|{version}|{run_as.uid if run_as else os.geteuid()}|{layout}"
    key = hashlib.sha256(ident.encode()).hexdigest()[:16]
    return cache_root() / engine / f"{label}-{key}"
