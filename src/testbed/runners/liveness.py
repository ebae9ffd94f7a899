"""Is a server this run started still there? Shared by the plain-data endpoints handed to xdist workers."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from testbed.errors import ServerDiedError
from testbed.runners.process import log_tail
from testbed.runners.reaper import gone_within, is_same_process


class ProcessLiveness:
    """``alive`` / ``log_tail`` / ``check_alive`` for an endpoint with pid, start_time, log_path and port.

    Mixed into frozen dataclasses; ``label`` and ``boundary`` name the engine in the error.
    """

    label: ClassVar[str]
    boundary: ClassVar[str]
    pid: int
    start_time: int | None
    log_path: str
    port: int

    def alive(self) -> bool:
        return is_same_process(self.pid, self.start_time)

    def log_tail(self, lines: int = 25) -> str:
        return log_tail(Path(self.log_path), lines)

    def check_alive(self, what: str = "the test", settle: float = 0.0) -> None:
        """Raise ServerDiedError with the server's last log lines if it is gone.

        ``settle``: after a dropped connection, give a dying server that long to show up as exited.
        """
        if not self.alive() or (settle and gone_within(self.pid, self.start_time, settle)):
            raise ServerDiedError(
                f"{self.label} (pid {self.pid}, port {self.port}) is no longer running ({what}). "
                f"Its last log lines ({self.log_path}):\n{self.log_tail()}",
                boundary=self.boundary,
            )
