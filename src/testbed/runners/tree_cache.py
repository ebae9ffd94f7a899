"""Folders cached between runs (initdb output, migrated data dirs) and copied per run.

Engine-agnostic: publishing is copy-then-rename, so a concurrent run sees a complete entry or none;
eviction keeps the most recently used entries.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from pathlib import Path

from testbed.runners.users import RunAs, chown_tree


def publish_tree(src: Path, dest: Path) -> None:
    """Copy ``src`` to the cache entry ``dest`` atomically (a run that published first wins)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    subprocess.run(["cp", "-a", str(src), str(tmp)], check=True)
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
    subprocess.run(["cp", "-a", str(src), str(dest)], check=True)
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
