"""Following a server's log file from where the last read stopped: whole lines only, rotation tolerated.

A server appends to its log on its own schedule; a reader polls. Each read returns the complete lines
written since the previous one (a line still being written waits for the next read). A file that was
replaced (another inode) or truncated (smaller than where we were) is read again from its start.
"""

from __future__ import annotations

import os
from pathlib import Path

MAX_READ = 8 * 1024 * 1024  # one read's cap: a flood of log lines is read over several calls, never all at once


class LogFollower:
    """The new complete lines of one log file, read incrementally."""

    def __init__(self, path: str | Path, *, from_end: bool = True) -> None:
        self.path = Path(path)
        self._offset = 0
        self._inode: int | None = None
        self._partial = b""
        if from_end:
            self.skip_to_end()

    def skip_to_end(self) -> None:
        """Forget what is in the file now: the next read starts with what is written after this call."""
        try:
            st = os.stat(self.path)
        except OSError:
            self._inode, self._offset = None, 0
            return
        self._inode, self._offset, self._partial = st.st_ino, st.st_size, b""

    def read_lines(self) -> list[bytes]:
        """The lines completed since the last read (without their newline)."""
        try:
            st = os.stat(self.path)
        except OSError:
            return []  # not there (yet, or any more): nothing new
        if self._inode is not None and (st.st_ino != self._inode or st.st_size < self._offset):
            self._offset, self._partial = 0, b""  # rotated or truncated: the new file from its start
        self._inode = st.st_ino
        if st.st_size <= self._offset:
            return []
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read(min(st.st_size - self._offset, MAX_READ))
        except OSError:
            return []
        self._offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()  # after the last newline: incomplete (or empty)
        return lines


_LEVEL_WORDS = (b"error", b"warn", b"fatal", b"panic", b"critical", b"crash", b"[err]", b"[wrn]", b"[ftl]", b"# ")


class ServerLogSource:
    """A server's text log as a ``testbed.observe`` source: lines that look like warnings or errors, as
    "server log" events, published when someone flushes (a per-test transcript, at the end of each test)."""

    def __init__(self, service: str, path: str | Path) -> None:
        from testbed import observe

        self.service = service
        self._follower = LogFollower(path, from_end=True)
        self._remove = observe.add_source(self.flush)

    def flush(self, wait: bool = True) -> None:
        from testbed import observe

        for raw in self._follower.read_lines()[-200:]:
            lowered = raw.lower()
            if not any(word in lowered for word in _LEVEL_WORDS[:-1]) and b" # " not in raw[:40]:
                continue  # redis marks warnings with '#'; the others spell their level out
            line = raw.decode("utf-8", "replace").strip()
            if line:
                observe.publish("server log", self.service, f"{self.service}: {line[:500]}", service=self.service,
                                severity="WARNING" if b"warn" in lowered or b" # " in raw[:40] else "ERROR",
                                message=line[:2000])

    def close(self) -> None:
        self._remove()
