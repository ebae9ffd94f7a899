"""Databases a kept PostgreSQL server hands to runs (runners/keeper.py), with spares copied while it is idle.

A run of a kept server asks the keeper for its worker database, a copy of its migrated template. Copying
(CREATE DATABASE ... TEMPLATE) is the dearest step of a rerun after the server start itself, so the keeper
copies ahead: when a run's database is released (the run ended or died), it drops it and its clones, then
tops up the spares of that template to the number of databases the template had out at once (xdist
workers, concurrent runs), at most ``MAX_SPARES``. The next run's claim renames a spare (about a
millisecond) instead of copying while the run waits; with none ready it copies then, as without a keeper.

Only names testbed makes are accepted: ``testbed_...`` identifiers of letters, digits, ``_`` and ``-``.
Spares (``testbed_spare_<n>``) are not named like a run's databases (``testbed_r...``), so nothing that
reaps dead runs' databases on a shared server would mistake one.
"""

from __future__ import annotations

import itertools
import queue
import re
import threading
from collections.abc import Callable
from typing import Any

from testbed.errors import ConfigError

MAX_SPARES = 4
MAX_TEMPLATES = 2  # templates whose spares are kept (the current migrations and the one before)
_NAME = re.compile(r"testbed_[A-Za-z0-9_-]{1,55}")


def _checked(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ConfigError(f"refusing database name {name!r}: a kept server hands out testbed_... names only")
    return name


class SpareDatabases:
    """Claims, releases and spares of one kept server. ``connect()`` opens an autocommit admin connection;
    ``clone_sql(name, template)`` is the copy statement for this server's version."""

    def __init__(self, connect: Callable[[], Any], clone_sql: Callable[[str, str], str]) -> None:
        self._connect = connect
        self._clone_sql = clone_sql
        self._lock = threading.Lock()
        self._spares: dict[str, list[str]] = {}  # template -> ready copies
        self._out: dict[str, int] = {}  # template -> databases handed out now
        self._peak: dict[str, int] = {}  # template -> most handed out at once
        self._recent: list[str] = []  # templates, most recently claimed last
        self._template_of: dict[str, str] = {}  # claimed database -> its template
        self._counter = itertools.count(1)
        self._claims: Any = None  # the connection claims use (one claim at a time)
        self._conn: Any = None  # the background connection (drops and copies)
        self._claims_lock = threading.Lock()
        self._xml: bool | None = None  # whether the server has XML support (asked once)
        self._work: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._worker = threading.Thread(target=self._background, name="testbed-spares", daemon=True)
        self._worker.start()

    def claim(self, template: str, name: str) -> bool:
        """Create database ``name`` as a copy of ``template``; True when a spare was renamed."""
        _checked(template)
        _checked(name)
        with self._lock:
            ready = self._spares.get(template)
            spare = ready.pop() if ready else None
            self._out[template] = self._out.get(template, 0) + 1
            self._peak[template] = max(self._peak.get(template, 0), self._out[template])
            if template in self._recent:
                self._recent.remove(template)
            self._recent.append(template)
            self._template_of[name] = template
        try:
            with self._claims_lock:
                conn = self._claims_connection()
                if spare is not None:
                    conn.execute(f'ALTER DATABASE "{spare}" RENAME TO "{name}"')
                else:
                    conn.execute(self._clone_sql(name, template))
        except BaseException:
            with self._lock:
                self._out[template] -= 1
                self._template_of.pop(name, None)
            raise
        return spare is not None

    def capture(self, name: str) -> dict[str, Any]:
        """Make the server log every statement of claimed database ``name``; ``xml``: whether the server can
        count rows through query_to_xml (a build without libxml cannot)."""
        from testbed.isolation.statement_log import INTERNAL, enable_statement_log

        with self._claims_lock:
            conn = self._claims_connection()
            enable_statement_log(conn, _checked(name))
            if self._xml is None:
                try:
                    conn.execute(f"{INTERNAL}SELECT xmlparse(content '<a/>')")
                    self._xml = True
                except Exception:
                    self._xml = False
        return {"xml": self._xml}

    def templates(self) -> list[str]:
        """The server's template databases, by name."""
        with self._claims_lock:
            rows = self._claims_connection().execute("SELECT datname FROM pg_database WHERE datistemplate")
            return sorted(row[0] for row in rows.fetchall())

    def _claims_connection(self) -> Any:
        """The connection claims and requests about them use (the caller holds ``_claims_lock``)."""
        if self._claims is None or self._claims.closed:
            self._claims = self._connect()
        return self._claims

    def release(self, name: str) -> None:
        """The claimer is gone: drop its database and clones, then top up the spares (in the background)."""
        with self._lock:
            template = self._template_of.pop(name, None)
            if template is None:
                return
            self._out[template] -= 1
        self._work.put(lambda: self._drop_claimed(name))
        self._work.put(self._top_up)

    def close(self) -> None:
        self._work.put(None)
        self._worker.join(timeout=30)
        with self._claims_lock:
            if self._claims is not None:
                self._claims.close()

    # -- the background connection -----------------------------------------------------------------
    def _background(self) -> None:
        conn = None
        while True:
            job = self._work.get()
            if job is None:
                break
            try:
                if conn is None or conn.closed:
                    conn = self._conn = self._connect()
                job()
            except Exception:  # a failed drop or copy costs only a spare: the next claim copies instead
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def _drop_claimed(self, name: str) -> None:
        clones = [row[0] for row in self._conn.execute(
            r"SELECT datname FROM pg_database WHERE datname LIKE %s", (name.replace("_", r"\_") + r"\_c%",))]
        for database in [name, *clones]:
            self._conn.execute(f'DROP DATABASE IF EXISTS "{_checked(database)}" WITH (FORCE)')

    def _top_up(self) -> None:
        with self._lock:
            keep = self._recent[-MAX_TEMPLATES:]
            stale = {t: self._spares.pop(t) for t in list(self._spares) if t not in keep}
            wanted = {t: min(MAX_SPARES, self._peak.get(t, 0)) - len(self._spares.get(t, [])) for t in keep}
        for names in stale.values():
            for spare in names:
                self._conn.execute(f'DROP DATABASE IF EXISTS "{spare}"')
        for template, missing in wanted.items():
            for _ in range(max(0, missing)):
                spare = f"testbed_spare_{next(self._counter)}"
                self._conn.execute(f'DROP DATABASE IF EXISTS "{spare}"')
                self._conn.execute(self._clone_sql(spare, template))
                with self._lock:
                    self._spares.setdefault(template, []).append(spare)
