"""Running one server as a local child process: start, wait until ready, log capture, stop.

Guarantees: the server runs as an unprivileged user when we are root; it is in its own session so a
terminal's Ctrl-C reaches pytest (which then stops servers in order), not the server directly; it gets
a parent-death signal so it never outlives a SIGKILLed owner; and the run record lets the next run clean
its folders.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from testbed.errors import ServerDiedError, ServerStartError
from testbed.runners.reaper import current_record
from testbed.runners.users import RunAs

_PR_SET_PDEATHSIG = 1
# The C library's symbols are already in the process: no ctypes.util.find_library, which runs ldconfig in a
# subprocess at import (slow, and a process start a unit-stage guard would have to inspect).
_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl


def _death_signal_setter(sig: int) -> Callable[[], None]:
    # Runs in the child between fork and exec, after the uid change (which would clear the setting).
    # Only a pre-resolved C call: nothing that could need a lock another thread holds.
    def setter() -> None:
        _prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)

    return setter


def log_tail(path: Path, lines: int = 25) -> str:
    """The last lines of a server log, for error messages."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 16384))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return "(no log)"
    tail = data.splitlines()[-lines:]
    return "\n".join("    " + line for line in tail) if tail else "    (log is empty)"


class LocalProcess:
    """A server process started from a real binary, owned by this Python process."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        run_as: RunAs | None = None,
        stop_signal: int = signal.SIGTERM,
        death_signal: int = signal.SIGKILL,
        boundary: str | None = None,
    ) -> None:
        self.name = name  # the engine: [tool.testbed.<name>] in hints
        self.boundary = boundary or name  # what errors name (e.g. "MariaDB" for the mysql engine)
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.run_as = run_as
        self.stop_signal = stop_signal
        self.death_signal = death_signal
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._proc is not None, "process not started"
        return self._proc.pid

    def start(self) -> LocalProcess:
        """Spawn the process (does not wait for readiness: see wait_ready)."""
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps the fd; closed right after spawn
        try:
            kwargs: dict[str, Any] = {}
            if self.run_as is not None:
                kwargs.update(user=self.run_as.uid, group=self.run_as.gid, extra_groups=[])
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=_death_signal_setter(self.death_signal),  # noqa: PLW1509
                close_fds=True,
                **kwargs,
            )
        except OSError as exc:
            raise ServerStartError(
                f"could not run {self.argv[0]}: {exc}. Check that the binary exists and is executable"
                + (f" by user {self.run_as.name!r}" if self.run_as else "") + ".",
                boundary=self.boundary,
            ) from exc
        finally:
            log.close()
        tokens = [str(self.cwd)] if self.cwd is not None else []
        current_record().add_process(self._proc.pid, self.name, self.stop_signal, self.argv, tokens)
        return self

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def tail(self, lines: int = 25) -> str:
        return log_tail(self.log_path, lines)

    def died_error(self, what: str) -> ServerDiedError:
        return ServerDiedError(
            f"{what}: the {self.boundary} server (pid {self.pid}) exited with code {self.returncode()}. "
            f"Its last log lines ({self.log_path}):\n{self.tail()}",
            boundary=self.boundary,
        )

    def wait_ready(self, probe: Callable[[], bool], timeout: float, interval: float = 0.005) -> None:
        """Poll ``probe`` until it returns True; fail fast with the log tail if the process exits."""
        deadline = time.monotonic() + timeout
        last_exc: BaseException | None = None
        while True:
            if not self.alive():
                raise ServerStartError(
                    f"the {self.boundary} server exited during start-up (code {self.returncode()}). "
                    f"Command: {' '.join(self.argv)}\nIts last log lines ({self.log_path}):\n{self.tail()}",
                    boundary=self.boundary,
                )
            try:
                if probe():
                    return
            except Exception as exc:  # probes raise while the server is still coming up
                last_exc = exc
            if time.monotonic() > deadline:
                self.stop()
                raise ServerStartError(
                    f"the {self.boundary} server was not ready after {timeout:.0f} s"
                    + (f" (last probe error: {last_exc})" if last_exc else "")
                    + f". Raise startup_timeout in [tool.testbed.{self.name}] if the machine is slow. "
                    f"Its last log lines ({self.log_path}):\n{self.tail()}",
                    boundary=self.boundary,
                )
            time.sleep(interval)

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to stop, wait, and SIGKILL it if it does not."""
        if self._proc is None:
            return
        proc = self._proc
        if proc.poll() is None:
            try:
                os.kill(proc.pid, self.stop_signal)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(5)
        current_record().remove_process(proc.pid)
