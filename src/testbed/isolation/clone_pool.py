"""Fresh databases for clone isolation, prepared in the background while the previous test runs.

CREATE DATABASE ... TEMPLATE and DROP DATABASE cost tens of milliseconds each; a test needs neither on its
own path. A thread with its own admin connection keeps one clone ready (with a connection already open to
it) and drops the clones tests are done with, so a test waits only for whatever part of that work its
predecessor's run time did not cover. Creating the next clone goes before dropping old ones: a test may
be waiting for it.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import psycopg

from testbed.errors import IsolationError
from testbed.isolation.leaks import OpenConnection, still_open

Clone = tuple[str, psycopg.Connection[Any]]


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
        self._capacity = ready
        self._ready: deque[Clone] = deque()
        self._to_drop: deque[tuple[str, int]] = deque()
        self._error: BaseException | None = None
        self._stopping = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="testbed-clone-pool", daemon=True)
        self._thread.start()

    def take(self, timeout: float = 60.0) -> Clone:
        """A fresh clone and an open connection to it (waits for the background work if needed)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._ready or self._error is not None, timeout):
                raise IsolationError(f"no cloned database was ready after {timeout:.0f} s", boundary="postgres")
            if self._error is not None:
                raise self._error
            clone = self._ready.popleft()
            self._cond.notify_all()  # room for the next one: start on it now
            return clone

    def give_back(self, name: str, conn: psycopg.Connection[Any]) -> None:
        """A clone whose test changed no schema, already put back to its template state: the next test takes it."""
        with self._cond:
            self._ready.appendleft((name, conn))
            self._cond.notify_all()

    def release(self, name: str, backend_pid: int) -> None:
        """Drop ``name`` in the background, once the backend of its closed connection has exited."""
        with self._cond:
            self._to_drop.append((name, backend_pid))
            self._cond.notify_all()

    def close(self) -> list[str]:
        """Stop the thread after it has dropped what was released; returns the clones never used."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(60)
        leftovers = []
        for name, conn in self._ready:
            conn.close()
            leftovers.append(name)
        self._ready.clear()
        return leftovers

    def _next_job(self) -> str | None:
        with self._cond:
            self._cond.wait_for(
                lambda: self._stopping or self._to_drop or len(self._ready) < self._capacity
            )
            if len(self._ready) < self._capacity and not self._stopping:
                return "create"
            if self._to_drop:
                return "drop"
            return None  # stopping, nothing left to drop

    def _run(self) -> None:
        try:
            admin = self._connect_admin()
        except BaseException as exc:  # surfaced to the test that takes a clone
            self._fail(exc)
            return
        with admin:
            while (job := self._next_job()) is not None:
                try:
                    if job == "create":
                        name = self._create(admin)
                        clone = (name, self._open(name))
                        with self._cond:
                            self._ready.append(clone)
                            self._cond.notify_all()
                    else:
                        with self._cond:
                            name, pid = self._to_drop.popleft()
                        # DROP DATABASE sleeps in 100 ms steps while a backend is on the database: let the
                        # test's just-closed connection go first (5 ms polls).
                        still_open(admin, [OpenConnection(pid, "", "", "", "")], grace=1.0)
                        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                except BaseException as exc:
                    self._fail(exc)
                    return

    def _fail(self, exc: BaseException) -> None:
        with self._cond:
            self._error = exc
            self._cond.notify_all()
