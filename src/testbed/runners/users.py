"""The unprivileged OS user servers run as when testbed itself runs as root.

PostgreSQL refuses to run as root, and a test server has no business running as root anyway.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass

from testbed.errors import ConfigError

DEFAULT_USER = "nobody"


@dataclass(frozen=True)
class RunAs:
    """An OS identity for a child process."""

    name: str
    uid: int
    gid: int


def server_identity() -> RunAs | None:
    """Who server processes run as: None (ourselves) unless we are root; then TESTBED_RUN_AS or nobody."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("TESTBED_RUN_AS", DEFAULT_USER)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise ConfigError(
            f"testbed runs as root and must start servers as an unprivileged user, but user {name!r} "
            f"does not exist. Create it (`useradd --system {name}`) or set TESTBED_RUN_AS to an existing "
            f"unprivileged user."
        ) from None
    if entry.pw_uid == 0:
        raise ConfigError(f"TESTBED_RUN_AS={name!r} is root; servers need an unprivileged user.")
    return RunAs(name=name, uid=entry.pw_uid, gid=entry.pw_gid)


def chown_tree(path: str, who: RunAs | None) -> None:
    """Give a directory tree to ``who`` (no-op when running as ourselves)."""
    if who is None:
        return
    os.chown(path, who.uid, who.gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), who.uid, who.gid)


def readable_by(path: str, who: RunAs | None) -> bool:
    """Whether ``who`` can execute/read ``path`` (every parent folder must be searchable)."""
    if who is None:
        return os.access(path, os.X_OK)
    # Walk the parents: a binary inside /root/... is invisible to other users even if world-executable.
    current = os.path.abspath(path)
    while True:
        try:
            st = os.stat(current)
        except OSError:
            return False
        if st.st_uid == who.uid:
            ok = bool(st.st_mode & 0o100)
        elif st.st_gid == who.gid:
            ok = bool(st.st_mode & 0o010)
        else:
            ok = bool(st.st_mode & 0o001)
        if not ok:
            return False
        parent = os.path.dirname(current)
        if parent == current:
            return True
        current = parent


def runnable_path(path: str, tree_root: str, who: RunAs | None, *, boundary: str) -> str:
    """``path`` if ``who`` can execute it, else the same file in a world-readable copy of ``tree_root``.

    A binary bundled in a virtualenv under a private folder (e.g. /root/...) cannot be run by the
    unprivileged user servers run as; a copy of its install tree (binary plus the lib/ and share/ it finds
    relative to itself, plus the library folders outside the tree its RPATH names, such as a wheel's
    ``pgserver.libs``) in the temp folder can. The copy is made once per tree version and reused.
    """
    if readable_by(path, who):
        return path
    import hashlib
    import shutil
    import tempfile
    from pathlib import Path

    from testbed.errors import ServerStartError
    from testbed.runners.elf import external_library_dirs
    from testbed.runners.ownership import private_folder

    root = os.path.realpath(tree_root)
    # Everything copied keeps its place relative to the common ancestor, so $ORIGIN-relative paths hold.
    trees = [root, *external_library_dirs(root)]
    ancestor = os.path.commonpath(trees)
    stamp = "|".join(f"{t}@{os.stat(t).st_mtime_ns}" for t in trees)
    key = hashlib.sha256(stamp.encode()).hexdigest()[:16]
    # Others may enter (the server user runs the copy) but neither list nor change it.
    base = private_folder(Path(tempfile.gettempdir()) / f"testbed-bin-{os.geteuid()}", "staged server binaries",
                          mode=0o711)
    dest = os.path.join(base, key)
    if not os.path.isdir(dest):
        tmp = f"{dest}.tmp-{os.getpid()}"
        for tree in trees:
            shutil.copytree(tree, os.path.join(tmp, os.path.relpath(tree, ancestor)), symlinks=True)
        for folder, _dirs, files in os.walk(tmp):
            os.chmod(folder, 0o755)
            for name in files:
                full = os.path.join(folder, name)
                if not os.path.islink(full):
                    os.chmod(full, os.stat(full).st_mode | 0o444 | (0o111 if os.access(full, os.X_OK) else 0))
        try:
            os.rename(tmp, dest)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # a concurrent run staged it first
    staged = os.path.join(dest, os.path.relpath(os.path.realpath(path), ancestor))
    if not readable_by(staged, who):
        raise ServerStartError(
            f"{path} is not executable by user {who.name if who else '?'!r} (servers run as that user when "
            f"testbed runs as root), and neither is its copy {staged}. Install the server somewhere "
            "world-readable, or set TESTBED_RUN_AS.",
            boundary=boundary,
        )
    return staged
