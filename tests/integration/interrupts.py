"""Interrupting a child process as a terminal would, and saying why when it does not stop."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path


def terminal_signals() -> None:
    """preexec_fn: the child starts with SIGINT and SIGTERM at their defaults and unblocked, as a process a
    shell starts does, whatever state the xdist worker that spawns it was left in (an ignored or blocked
    signal is inherited across exec, and Python then installs no KeyboardInterrupt handler)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


def why_still_running(proc: subprocess.Popen[bytes] | subprocess.Popen[str], log: Path | None = None) -> str:
    """What a process that did not exit was doing: its signal state, and (Python children started with
    PYTHONFAULTHANDLER=1) every thread's stack, dumped by SIGABRT into its output."""
    try:
        status = Path(f"/proc/{proc.pid}/status").read_text()
        sig = " ".join(line for line in status.splitlines() if line.startswith(("State", "Sig", "Threads")))
    except OSError:
        sig = "(gone)"
    proc.send_signal(signal.SIGABRT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    tail = log.read_text(errors="replace")[-6000:] if log and log.exists() else ""
    return f"the interrupted process (pid {proc.pid}) did not exit: {sig}\n{tail}"
