"""Stopping a pika BlockingConnection that its own consumer thread drives, from another thread."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def stop_consumer(conn: Any, thread: threading.Thread, mark_stopping: Callable[[], None]) -> None:
    """Close ``conn`` on its own thread (pika is not thread-safe) and wait for the thread to end."""
    if thread.is_alive():
        def stop() -> None:
            mark_stopping()
            try:
                conn.close()
            except Exception:  # noqa: S110 - a broken connection is already closed
                pass

        try:
            conn.add_callback_threadsafe(stop)
        except Exception:  # the connection is gone: the thread ends on its own
            mark_stopping()
        thread.join(10)
    elif conn.is_open:
        try:
            conn.close()
        except Exception:  # noqa: S110
            pass
