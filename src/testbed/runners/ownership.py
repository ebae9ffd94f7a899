"""Folders testbed trusts: its own, made by the current user, not writable (or readable) by anyone else.

Run records say which processes to kill and which folders to delete; a record another local user could
plant would make root delete any path. So the folders holding records and staged binaries are created
private, and an existing one is accepted only when it is a real folder of the current user with no
access for others beyond what its purpose needs.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from testbed.errors import ConfigError


def private_folder(path: Path, purpose: str, *, mode: int = 0o700, env_var: str = "") -> Path:
    """``path`` as a folder of the current user with exactly ``mode``'s access for others.

    Created with ``mode`` when missing. An existing folder that is a symlink, belongs to another user or
    is writable by others is refused with a message saying how to fix it; one of ours that others may
    only read is narrowed to ``mode``.
    """
    try:
        os.mkdir(path, mode)
        os.chmod(path, mode)  # the umask may have narrowed it; never widened beyond ``mode``
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError(
            f"cannot create {path} ({purpose}): {exc.strerror}."
            + (f" Set {env_var} to a folder you own." if env_var else ""),
        ) from None
    st = os.lstat(path)
    problem = ""
    if stat.S_ISLNK(st.st_mode):
        problem = f"is a symlink (to {os.readlink(path)})"
    elif not stat.S_ISDIR(st.st_mode):
        problem = "is not a folder"
    elif st.st_uid != os.geteuid():
        problem = f"belongs to uid {st.st_uid}, not to you (uid {os.geteuid()})"
    elif stat.S_IMODE(st.st_mode) & 0o022:
        problem = f"has mode {stat.S_IMODE(st.st_mode):o}: others may write to it (expected {mode:o})"
    elif stat.S_IMODE(st.st_mode) & ~mode & 0o077:
        os.chmod(path, mode)  # ours and never writable by others: an older testbed made it wider; narrow it
    if problem:
        raise ConfigError(
            f"refusing to use {path} for {purpose}: it {problem}. testbed trusts only a folder of its own "
            f"there, because what it finds in it decides which processes it stops and which folders it "
            f"deletes. Remove it (`rm -rf {path}`) if it is yours"
            + (f", or set {env_var} to a private folder." if env_var else "."),
        )
    return path
