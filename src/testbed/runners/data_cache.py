"""Server data folders cached between runs: an empty one per binary (``initdb``, ``mariadb-install-db``, a
broker's first boot) and a migrated one per content key (the migrations' hash).

A session whose migrations did not change starts by copying a ready folder (tens of milliseconds on a
tmpfs) instead of initialising and migrating. Publishing is copy-then-rename, so a concurrent run sees a
complete entry or none; eviction keeps the most recently used entries.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from testbed.runners.binaries import Candidate
from testbed.runners.tree_cache import binary_cache_root, copy_tree, evict_oldest, publish_tree
from testbed.runners.users import RunAs


class DataDirCache:
    """The cached data folders of one engine binary, under the user cache folder."""

    def __init__(self, engine: str, binary: Candidate, run_as: RunAs | None, layout: str, keep: int = 8) -> None:
        self.root = binary_cache_root(engine, binary.major, binary.path, binary.version, run_as, layout)
        self.keep = keep

    @property
    def base_dir(self) -> Path:
        return self.root / "base"

    def entry(self, key: str) -> Path:
        return self.root / "data" / key

    def has(self, key: str) -> bool:
        return self.entry(key).is_dir()

    def ensure_base(self, make: Callable[[Path], None], scratch: Path) -> Path:
        """The cached empty data folder; ``make(target)`` creates it (once per binary) when missing.

        ``target`` is inside ``scratch``, a run folder the server user can write (the cache folder may be
        private, e.g. under /root) and usually on a tmpfs.
        """
        if self.base_dir.is_dir():
            return self.base_dir
        target = scratch / "base"
        try:
            make(target)
            publish_tree(target, self.base_dir)
        finally:
            shutil.rmtree(target, ignore_errors=True)
        return self.base_dir

    def copy_out(self, key: str, dest: Path, run_as: RunAs | None) -> None:
        """Copy the entry for ``key`` to a run's data folder (and mark it most recently used)."""
        entry = self.entry(key)
        os.utime(entry)  # most recently used: a concurrent run's eviction keeps it
        copy_tree(entry, dest, run_as)

    def copy_base_out(self, base: Path, dest: Path, run_as: RunAs | None) -> None:
        copy_tree(base, dest, run_as)

    def publish(self, data_dir: Path, key: str) -> None:
        publish_tree(data_dir, self.entry(key))
        evict_oldest(self.root / "data", self.keep)
