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
