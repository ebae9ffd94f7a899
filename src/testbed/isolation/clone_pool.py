"""Fresh databases for clone isolation, prepared in the background while the previous test runs.

CREATE DATABASE ... TEMPLATE and DROP DATABASE cost tens of milliseconds each; a test needs neither on its
own path. A thread with its own admin connection keeps one clone ready (with a connection already open to
it) and drops the clones tests are done with, so a test waits only for whatever part of that work its
predecessor's run time did not cover.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

import psycopg

from testbed.errors import IsolationError
from testbed.isolation.leaks import OpenConnection, still_open


class ClonePool:
    """Prepares ``ready`` clones ahead and drops released ones, on a background thread."""

    def __init__(
        self,
        connect_admin: Callable[[], psycopg.Connection[Any]],
        create: Callable[[psycopg.Connection[Any]], str],
        open_connection: Callable[[str], psycopg.Connection[Any]],
        ready: int = 1,
    ) -> None:
        self._connect_admin = connect_admin
        self._create = create
        self._open = open_connection
        self._ready: queue.Queue[tuple[str, psycopg.Connection[Any]] | BaseException] = queue.Queue(maxsize=ready)
        self._to_drop: queue.Queue[tuple[str, int] | None] = queue.Queue()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="testbed-clone-pool", daemon=True)
        self._thread.start()

    def take(self, timeout: float = 60.0) -> tuple[str, psycopg.Connection[Any]]:
        """A fresh clone and an open connection to it (waits for the background work if needed)."""
        try:
            item = self._ready.get(timeout=timeout)
        except queue.Empty:
            raise IsolationError(f"no cloned database was ready after {timeout:.0f} s", boundary="postgres") from None
        if isinstance(item, BaseException):
            raise item
        return item

    def release(self, name: str, backend_pid: int) -> None:
        """Drop ``name`` in the background, once the backend of its closed connection has exited."""
        self._to_drop.put((name, backend_pid))

    def close(self) -> list[str]:
        """Stop the thread; drop everything it holds. Returns names it could not drop."""
        self._stopping.set()
        self._to_drop.put(None)
        self._thread.join(60)
        leftovers: list[str] = []
        while True:
            try:
                item = self._ready.get_nowait()
            except queue.Empty:
                break
            if not isinstance(item, BaseException):
                item[1].close()
                leftovers.append(item[0])
        return leftovers

    def _run(self) -> None:
        try:
            admin = self._connect_admin()
        except BaseException as exc:  # surfaced to the test that takes a clone
            self._ready.put(exc)
            return
        with admin:
            while not self._stopping.is_set():
                self._drop_released(admin, block=self._ready.full())
                if self._stopping.is_set() or self._ready.full():
                    continue
                try:
                    name = self._create(admin)
                    self._ready.put((name, self._open(name)))
                except BaseException as exc:
                    self._ready.put(exc)
                    return
            self._drop_released(admin, block=False)

    def _drop_released(self, admin: psycopg.Connection[Any], *, block: bool) -> None:
        while True:
            try:
                item = self._to_drop.get(timeout=0.5) if block else self._to_drop.get_nowait()
            except queue.Empty:
                return
            if item is None:
                return
            name, pid = item
            # DROP DATABASE sleeps in 100 ms steps while any backend is on the database: let the test's
            # just-closed connection go first (5 ms polls).
            still_open(admin, [OpenConnection(pid, "", "", "", "")], grace=1.0)
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            block = False
