"""Dynamic loopback ports."""

from __future__ import annotations

import errno
import socket

from testbed.errors import ServerStartError

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port on ``host`` that nothing listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def ensure_port_free(port: int, *, service: str, host: str = LOOPBACK) -> None:
    """Raise a clear error when an explicitly configured port is already taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise ServerStartError(
                f"port {host}:{port} configured for {service} is already in use by another process. "
                f"Remove `port` from [tool.testbed.{service}] to get a free dynamic port, or stop what "
                f"listens there (`ss -ltnp 'sport = :{port}'` shows it).",
                boundary=service,
            ) from None
