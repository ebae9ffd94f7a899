"""One database per (xdist) worker, cloned from the template, and per-test isolation on top of it.

Strategies, chosen per test:
- ``rollback`` (default): the test's work runs in one transaction that is rolled back; commits on the
  test connection become savepoints. Cheapest (one round trip), but only sees that connection.
- ``truncate``: code may commit on any connection; afterwards exactly the tables written (tracked by
  triggers in the template) are truncated and reloaded to their template state, sequences included.
- ``clone``: a fresh database cloned from the template for this test, dropped afterwards.
- ``none``: nothing is undone; rows left behind are reported (and then cleaned so the next test is not
  affected).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg

from testbed.config import ISOLATION_STRATEGIES
from testbed.errors import ConfigError, GuardError, LeakError
from testbed.isolation.clone_pool import ClonePool
from testbed.isolation.leaks import (
    LeakReport,
    OpenConnection,
    lock_holders,
    open_connections,
    row_counts,
    still_open,
    terminate,
)
from testbed.isolation.rollback import SessionFactory, TestbedConnection
from testbed.schema.template import RunOwner, is_testbed_database, mark_owner
from testbed.services.postgres import PostgresEndpoint

RESET_LOCK_TIMEOUT = "5s"  # a backstop: sessions holding locks are ended before the cleanup

# After a rollback-isolated test, in one round trip with the ROLLBACK: how many backends are on the
# database (cheap; the detailed pg_stat_activity query, ~1 ms, runs only when others are there) and
# which tables other connections committed writes to (which a rollback cannot undo).
ROLLBACK_CHECK_SQL = """
SELECT pg_stat_get_db_numbackends((SELECT oid FROM pg_database WHERE datname = current_database())),
       (SELECT array_agg(DISTINCT relid::regclass::text) FROM testbed.dirty WHERE pid <> pg_backend_pid())
"""


def worker_db_name(worker_id: str, prefix: str = "testbed") -> str:
    """``testbed_gw0`` under pytest-xdist, ``testbed_main`` otherwise."""
    safe = "".join(ch if ch.isalnum() else "_" for ch in worker_id.lower())
    return f"{prefix}_{safe}"


def clone_sql(name: str, template: str, major: int) -> str:
    # FILE_COPY (15+) copies the template's files instead of WAL-logging every block: faster for the
    # small schemas tests use; before 15 it was the only strategy and the clause does not exist.
    strategy = " STRATEGY FILE_COPY" if major >= 15 else ""
    return f'CREATE DATABASE "{name}" TEMPLATE "{template}"{strategy}'


@dataclass
class TestContext:
    """The database state of one running test."""

    __test__ = False
    name: str
    strategy: str
    dbname: str
    url: str
    started: datetime
    leak_check: bool
    connection: psycopg.Connection[Any]
    sessions: list[Any] = field(default_factory=list)
    engines: list[Any] = field(default_factory=list)


class WorkerDatabase:
    """This worker's database and its long-lived connections; sets up and undoes each test."""

    def __init__(self, endpoint: PostgresEndpoint, worker_id: str = "main") -> None:
        self.endpoint = endpoint
        self.dbname = worker_db_name(worker_id, endpoint.db_prefix)
        self._clone_counter = itertools.count(1)
        self._created: set[str] = set()
        self.admin = endpoint.connect(endpoint.maintenance_db, autocommit=True)
        self.admin.execute(f'DROP DATABASE IF EXISTS "{self.dbname}"')  # a leftover of a failed run
        self.admin.execute(clone_sql(self.dbname, endpoint.template, endpoint.major))
        self._created.add(self.dbname)
        self.conn = TestbedConnection.connect(**endpoint.conninfo(self.dbname), application_name="testbed")
        self._guard(self.conn, "use")
        self._owner = RunOwner(**endpoint.owner) if endpoint.owner else None
        if self._owner is not None:
            mark_owner(self.conn, self._owner)
        self._sessions: SessionFactory | None = None
        self._clones: ClonePool | None = None

    @property
    def url(self) -> str:
        return self.endpoint.url(self.dbname)

    def session_factory(self) -> SessionFactory:
        if self._sessions is None:
            self._sessions = SessionFactory(self.conn)
        return self._sessions

    # -- per test ----------------------------------------------------------------------------------
    def begin(self, name: str, strategy: str = "rollback", leak_check: bool = True) -> TestContext:
        """Prepare the database for one test."""
        if strategy not in ISOLATION_STRATEGIES:
            raise ConfigError(f"isolation={strategy!r} is not one of: {', '.join(ISOLATION_STRATEGIES)}.")
        self.endpoint.check_alive(f"setting up {name}")
        started = datetime.now(UTC)
        try:
            if strategy == "clone":
                clone, conn = self._clone_pool().take()
                return TestContext(name, strategy, clone, self.endpoint.url(clone), started, leak_check, conn)
            if strategy == "rollback":
                self.conn.begin_test()
            return TestContext(name, strategy, self.dbname, self.url, started, leak_check, self.conn)
        except psycopg.OperationalError:
            self.endpoint.check_alive(f"setting up {name}")
            raise

    def end(self, ctx: TestContext) -> None:
        """Undo the test's work by its strategy; raise LeakError naming what it left behind."""
        try:
            report = self._end(ctx)
        except psycopg.OperationalError:
            self.endpoint.check_alive(f"cleaning up after {ctx.name}")
            raise
        if report:
            raise report.error(ctx.name)

    def _close_orm(self, ctx: TestContext) -> None:
        for session in ctx.sessions:
            if "testbed_connection" in session.info:
                SessionFactory.close(session)
            else:
                session.close()
        for engine in ctx.engines:
            engine.dispose()

    def _end(self, ctx: TestContext) -> LeakReport:
        self._close_orm(ctx)
        report = LeakReport()
        if ctx.strategy == "clone":
            own_open = not ctx.connection.closed
            own = ctx.connection.info.backend_pid if own_open else 0
            # Count while our own connection is still open (exactly one backend of ours): a closed
            # connection's backend exits asynchronously and would blur the count.
            if ctx.leak_check and self._backends(ctx.dbname) > (1 if own_open else 0):
                report.connections = self._leaked(ctx, ctx.dbname, exclude=[own])
            ctx.connection.close()
            self._clone_pool().release(ctx.dbname, own)  # dropped in the background, leaks terminated
            return report
        conn = self.conn
        if ctx.strategy == "rollback":
            if conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
                conn.end_test()
            # Inside the test's transaction when it is still open: the check and the ROLLBACK go as one
            # simple query, one round trip per test (0.2 ms here; a pipeline's sync costs more).
            conn.forget_test()
            cur = conn.execute((ROLLBACK_CHECK_SQL + "; ROLLBACK").encode())
            row = cur.fetchone()
            while cur.nextset():
                pass
            backends = int(row[0]) if row and row[0] else 0
            others = list(row[1]) if row and row[1] else []
            if ctx.leak_check and backends > 1:
                report.connections = self._leaked(ctx, self.dbname, exclude=[conn.info.backend_pid])
                terminate(self.admin, [c.pid for c in report.connections])
            if others:
                report.rows = row_counts(conn, others)
                report.rows_context = (
                    "committed through another connection, which rollback isolation cannot undo (testbed "
                    "truncated them); use @pytest.mark.testbed(isolation='truncate') for code that commits "
                    "on its own connections"
                )
                self._reset(conn)
            return report
        # truncate / none: code committed for real.
        conn.rollback()
        if self._backends(self.dbname) > 1:
            if ctx.leak_check:
                report.connections = self._leaked(ctx, self.dbname, exclude=[conn.info.backend_pid])
                terminate(self.admin, [c.pid for c in report.connections])
            # A session still in a transaction (a pool's connection the test left mid-transaction) would make
            # the truncation wait; name it and end it instead, so this test fails and the next ones do not.
            report.blockers = lock_holders(conn, exclude=[c.pid for c in report.connections])
            conn.rollback()
            terminate(self.admin, [c.pid for c in report.blockers])
        if ctx.strategy == "none":
            row = conn.execute("SELECT array_agg(DISTINCT relid::regclass::text) FROM testbed.dirty").fetchone()
            dirty = list(row[0]) if row and row[0] else []
            counts = {t: n for t, n in row_counts(conn, dirty).items() if n}
            if counts and ctx.leak_check:
                report.rows = counts
                report.rows_context = "(isolation='none'; testbed cleaned them so the next test starts clean)"
        self._reset(conn)
        conn.rollback()
        return report

    def _clone_pool(self) -> ClonePool:
        # Started on the first clone-isolated test: sessions that never clone pay nothing.
        if self._clones is None:
            def create(admin: psycopg.Connection[Any]) -> str:
                name = f"{self.dbname}_c{next(self._clone_counter)}"
                admin.execute(clone_sql(name, self.endpoint.template, self.endpoint.major))
                return name

            self._clones = ClonePool(
                lambda: self.endpoint.connect(self.endpoint.maintenance_db, autocommit=True),
                create,
                self._open_clone,
            )
        return self._clones

    def _open_clone(self, name: str) -> psycopg.Connection[Any]:
        conn = psycopg.connect(**self.endpoint.conninfo(name), application_name="testbed")
        if self._owner is not None:
            mark_owner(conn, self._owner)
        return conn

    def _backends(self, dbname: str) -> int:
        """How many backends are on ``dbname`` (cheap: no pg_stat_activity snapshot)."""
        row = self.admin.execute(
            "SELECT pg_stat_get_db_numbackends(oid) FROM pg_database WHERE datname = %s", (dbname,)
        ).fetchone()
        return int(row[0]) if row else 0

    def _leaked(self, ctx: TestContext, dbname: str, exclude: list[int]) -> list[OpenConnection]:
        """Connections to ``dbname`` the test opened and left open (a closing one gets a moment to go)."""
        candidates = open_connections(self.admin, ctx.started, dbname=dbname, exclude=exclude)
        return still_open(self.admin, candidates) if candidates else []

    def _reset(self, conn: psycopg.Connection[Any]) -> list[str]:
        # testbed.reset() exists only in databases built from testbed's template: it is its own guard.
        conn.execute(f"SET lock_timeout = '{RESET_LOCK_TIMEOUT}'")
        try:
            row = conn.execute("SELECT testbed.reset()").fetchone()
            conn.commit()
        except psycopg.errors.LockNotAvailable as exc:
            conn.rollback()
            raise LeakError(
                f"could not truncate the tables the test wrote: another connection holds a lock on them for "
                f"more than {RESET_LOCK_TIMEOUT} ({exc.diag.message_primary}). A connection the test left open "
                "in a transaction is the usual cause.",
                boundary="postgres isolation",
            ) from None
        return list(row[0]) if row and row[0] else []

    def _guard(self, conn: psycopg.Connection[Any], action: str) -> None:
        if not is_testbed_database(conn):
            raise GuardError(
                f"refusing to {action} database {conn.info.dbname!r}: it was not created by testbed (no "
                "testbed.instance marker). testbed only truncates, clones or drops its own test databases.",
                boundary="postgres",
            )
        conn.rollback()

    def drop(self, name: str) -> None:
        """Drop a database this worker created (terminating what is still connected)."""
        if name not in self._created:
            raise GuardError(f"refusing to drop database {name!r}: this testbed run did not create it.")
        self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._created.discard(name)

    def close(self) -> None:
        """End of the worker's session: close connections and drop the worker database and clones."""
        if self._clones is not None:
            leftovers = self._clones.close()
            if self.endpoint.alive():
                for name in leftovers:
                    self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if self._sessions is not None:
            self._sessions.engine.dispose(close=False)
        self.conn.in_test = False
        try:
            self.conn.close()
        except psycopg.Error:
            pass
        if self.endpoint.alive():
            for name in list(self._created):
                try:
                    self.drop(name)
                except psycopg.Error:
                    pass
        self.admin.close()
