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
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg

from testbed import observe
from testbed.config import ISOLATION_STRATEGIES
from testbed.engines.postgres import PostgresEndpoint
from testbed.errors import ConfigError, GuardError, LeakError
from testbed.isolation.async_rollback import AsyncpgTestSession, AsyncSessionFactory, TestbedAsyncConnection
from testbed.isolation.clone_pool import ClonePool
from testbed.isolation.context import BaseTestContext, worker_db_name
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
from testbed.isolation.statement_log import (
    INTERNAL,
    StatementCapture,
    enable_statement_log,
    test_application_name,
)
from testbed.schema.template import RunOwner, is_testbed_database, mark_owner

RESET_LOCK_TIMEOUT = "5s"  # a backstop: sessions holding locks are ended before the cleanup

# After a rollback-isolated test, in one round trip with the ROLLBACK: how many backends are on the
# database (cheap; the detailed pg_stat_activity query, ~1 ms, runs only when others are there) and
# which tables other connections committed writes to (which a rollback cannot undo).
# Sequences are not transactional: a rollback undoes a test's rows, not the ids they took. Before a test that
# commits for real follows rollback tests, every sequence that moved goes back to its template state (found by
# its value: a rollback test's record of the tables it wrote is rolled back with it). Once per switch of
# strategy, not per rollback test: reading every sequence costs a quarter of a rollback test's overhead.
RESTORE_SEQUENCES_SQL = """/*testbed*/
SELECT count(setval(st.seqid, st.last_value, st.is_called)) FROM testbed.sequence_state st
WHERE pg_sequence_last_value(st.seqid) IS DISTINCT FROM (CASE WHEN st.is_called THEN st.last_value END)
"""

ROLLBACK_CHECK_SQL = """/*testbed*/
SELECT pg_stat_get_db_numbackends((SELECT oid FROM pg_database WHERE datname = current_database())),
       (SELECT array_agg(DISTINCT relid::regclass::text) FROM testbed.dirty WHERE pid <> pg_backend_pid())
"""


# What a test wrote (tables and their row counts), for its transcript: the bookkeeping of written tables
# counted in the same round trip as the cleanup. {who}: whose writes.
WRITTEN_SQL = """/*testbed*/
SELECT d.t, (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %s', d.t), false, true, '')))[1]
       ::text::bigint
FROM (SELECT DISTINCT relid::regclass::text AS t FROM testbed.dirty WHERE {who}) d ORDER BY 1
"""
# The same without counts, for a server built without libxml (the pgserver wheel's): query_to_xml fails there.
WRITTEN_NAMES_SQL = """/*testbed*/
SELECT DISTINCT relid::regclass::text, NULL::bigint FROM testbed.dirty WHERE {who} ORDER BY 1
"""


def clone_sql(name: str, template: str, major: int) -> str:
    # FILE_COPY (15+) copies the template's files instead of WAL-logging every block: faster for the
    # small schemas tests use; before 15 it was the only strategy and the clause does not exist.
    strategy = " STRATEGY FILE_COPY" if major >= 15 else ""
    return f'CREATE DATABASE "{name}" TEMPLATE "{template}"{strategy}'


@dataclass
class TestContext(BaseTestContext):
    """The database state of one running PostgreSQL test."""

    connection: psycopg.Connection[Any]
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    sessions: list[Any] = field(default_factory=list)
    engines: list[Any] = field(default_factory=list)
    async_connection: TestbedAsyncConnection | None = None  # async_db / async_db_session, when asked for
    async_sessions: list[Any] = field(default_factory=list)


class WorkerDatabase:
    """This worker's database and its long-lived connections; sets up and undoes each test."""

    def __init__(self, endpoint: PostgresEndpoint, worker_id: str = "main") -> None:
        self.endpoint = endpoint
        self.dbname = worker_db_name(worker_id, endpoint.db_prefix)
        self._clone_counter = itertools.count(1)
        self._created: set[str] = set()
        self._claim: socket.socket | None = None
        if endpoint.keeper:  # a kept server: its keeper hands out the database and drops it after this run
            from testbed.runners.keeper import claim

            self._claim = claim(endpoint.keeper, endpoint.template, self.dbname)
        self._admin: psycopg.Connection[Any] | None = None
        if self._claim is None:
            self.admin.execute(f'DROP DATABASE IF EXISTS "{self.dbname}"')  # a leftover of a failed run
            self.admin.execute(clone_sql(self.dbname, endpoint.template, endpoint.major))
            self._created.add(self.dbname)
        self._owner = RunOwner(**endpoint.owner) if endpoint.owner else None
        self._conn: TestbedConnection | None = None
        if self._claim is None:
            self._open()  # at once: a shared server's reaper finds the owner row in it if this run dies
        self._sessions: SessionFactory | None = None
        self._clones: ClonePool | None = None
        self._async: TestbedAsyncConnection | None = None
        self._async_sessions: AsyncSessionFactory | None = None
        self.capture: StatementCapture | None = None
        self._written_sql = WRITTEN_SQL
        self._current: TestContext | None = None
        self._sequences_moved = False  # a rollback test ran since sequences were last put back
        self._appname_before: str | None = None

    @property
    def admin(self) -> psycopg.Connection[Any]:
        """An autocommit connection to the server's maintenance database: clones, drops, a leak's details
        (opened on first use for a database a keeper handed out: a passing test on it may never need one)."""
        if self._admin is None:
            self._admin = self.endpoint.connect(self.endpoint.maintenance_db, autocommit=True)
        return self._admin

    @property
    def conn(self) -> TestbedConnection:
        """The worker's long-lived connection to its database (opened on first use for a database a keeper
        handed out: a run whose tests use only the application's connections, Django's, never pays for it)."""
        return self._conn if self._conn is not None else self._open()

    def _open(self) -> TestbedConnection:
        conn = TestbedConnection.connect(**self.endpoint.conninfo(self.dbname), application_name="testbed")
        self._guard(conn, "use")
        if self._owner is not None:
            mark_owner(conn, self._owner)
        self._conn = conn
        return conn

    def enable_capture(self) -> bool:
        """Log every statement on this worker's databases and publish them per test (testbed.observe).

        False when the server keeps no structured log testbed can read (one testbed did not start, or older
        than PostgreSQL 15)."""
        from pathlib import Path

        if self.capture is not None:
            return True
        path = Path(self.endpoint.statement_log) if self.endpoint.statement_log else None
        if path is None or not path.exists():
            return False
        # Row counts of written tables go through query_to_xml, which needs a server built with libxml.
        if self._claim is not None:  # the keeper sets the database up on its own connection
            from testbed.runners.keeper import capture

            xml = bool(capture(self._claim).get("xml"))
        else:
            enable_statement_log(self.admin, self.dbname)
            try:
                self.admin.execute(f"{INTERNAL}SELECT xmlparse(content '<a/>')")
                xml = True
            except psycopg.Error:
                xml = False
        self._written_sql = WRITTEN_SQL if xml else WRITTEN_NAMES_SQL
        if self._conn is not None:  # this session predates the setting; later ones get it from the database
            self._conn.execute(f"{INTERNAL}SET log_min_duration_statement = 0")
            self._conn.commit()
        self.capture = StatementCapture(path, lambda: self.admin, self._capture_pids)
        self.capture.watch(self.dbname)
        return True

    def _capture_pids(self) -> list[int]:
        pids = self.own_pids
        ctx = self._current
        if ctx is not None and ctx.strategy == "clone" and not ctx.connection.closed:
            pids.append(ctx.connection.info.backend_pid)
        return pids

    @property
    def url(self) -> str:
        return self.endpoint.database_url(self.dbname)

    @property
    def own_pids(self) -> list[int]:
        """Backends of testbed's own long-lived connections to the worker database (never leaks)."""
        pids = [self._conn.info.backend_pid] if self._conn is not None and not self._conn.closed else []
        if self._async is not None and not self._async.closed:
            pids.append(self._async.info.backend_pid)
        return pids

    def async_connection(self, ctx: TestContext) -> TestbedAsyncConnection:
        """The test's psycopg AsyncConnection: the worker's (rollback: commits become savepoints), or one to
        the test's own clone. Opened without an event loop, so any loop of any scope can use it."""
        if ctx.async_connection is not None:
            return ctx.async_connection
        if ctx.strategy == "clone":
            conn = TestbedAsyncConnection.open_now({**self.endpoint.conninfo(ctx.dbname),
                                                    "application_name": "testbed"})
        else:
            if self._async is None or self._async.closed:
                self._async = TestbedAsyncConnection.open_now({**self.endpoint.conninfo(self.dbname),
                                                               "application_name": "testbed"})
            conn = self._async
            if ctx.strategy == "rollback":
                conn.begin_test()
        ctx.async_connection = conn
        return conn

    def async_session(self, ctx: TestContext, driver: str = "psycopg") -> Any:
        """A SQLAlchemy AsyncSession on the test's database: psycopg (the worker's async connection) or asyncpg
        (a connection of the test's own, opened in its loop)."""
        if driver == "asyncpg":
            asyncpg_session = AsyncpgTestSession(ctx.url, rollback=ctx.strategy == "rollback")
            ctx.async_sessions.append(asyncpg_session)
            return asyncpg_session.session
        conn = self.async_connection(ctx)
        if ctx.strategy == "clone":
            factory = AsyncSessionFactory(conn)
            ctx.engines.append(factory)
        else:
            if self._async_sessions is None or self._async_sessions.conn is not conn:
                self._async_sessions = AsyncSessionFactory(conn)
            factory = self._async_sessions
        session = factory.open()
        ctx.async_sessions.append(session)
        return session

    def _end_async(self, ctx: TestContext) -> None:
        for session in ctx.async_sessions:
            if isinstance(session, AsyncpgTestSession):
                session.close()
            else:
                AsyncSessionFactory.close(session)
        conn = ctx.async_connection
        if conn is None:
            return
        if ctx.strategy == "clone":
            conn.close_now()
        else:
            conn.end_test_now()  # the ROLLBACK (truncate: ends whatever the test left open)

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
                ctx = TestContext(name, strategy, clone, self.endpoint.database_url(clone), conn, leak_check,
                                  started=started)
            else:
                if strategy == "rollback":
                    self.conn.begin_test()
                    self._sequences_moved = True  # a rolled-back insert keeps the id it took
                elif self._sequences_moved:
                    self.conn.execute(RESTORE_SEQUENCES_SQL)
                    self.conn.commit()
                    self._sequences_moved = False
                ctx = TestContext(name, strategy, self.dbname, self.url, self.conn, leak_check, started=started)
            if self.capture is not None:
                self._name_connections(ctx)
            return ctx
        except psycopg.OperationalError:
            self.endpoint.check_alive(f"setting up {name}")
            raise

    def _name_connections(self, ctx: TestContext) -> None:
        """Connections the test opens say so (application_name ``testbed:<test>``): every libpq connection the
        process opens meanwhile without a name of its own (PGAPPNAME: the application's pools, psql)."""
        import os

        self._current = ctx
        appname = test_application_name(ctx.name)
        # testbed's own connection keeps its name ("testbed"): the transcript knows it by its pid, and a round
        # trip per test to rename it would double what capture costs a short test.
        self._appname_before = os.environ.get("PGAPPNAME")
        if self._appname_before is None or self._appname_before.startswith("testbed:"):
            os.environ["PGAPPNAME"] = appname

    def _forget_names(self) -> None:
        import os

        self._current = None
        if os.environ.get("PGAPPNAME", "").startswith("testbed:"):
            if self._appname_before is None or self._appname_before.startswith("testbed:"):
                os.environ.pop("PGAPPNAME", None)
            else:
                os.environ["PGAPPNAME"] = self._appname_before

    def end(self, ctx: TestContext) -> None:
        """Undo the test's work by its strategy; raise LeakError naming what it left behind."""
        if self.capture is not None:
            self._forget_names()
        try:
            report = self._end(ctx)
        except psycopg.OperationalError:
            self.endpoint.check_alive(f"cleaning up after {ctx.name}")
            raise
        if report:
            error = report.error(ctx.name)
            observe.publish("sql", "leak", str(error).splitlines()[0], test=ctx.name)
            raise error

    def _close_orm(self, ctx: TestContext) -> None:
        for session in ctx.sessions:
            if "testbed_connection" in session.info:
                SessionFactory.close(session)
            else:
                session.close()
        for engine in ctx.engines:
            engine.dispose()

    def _end(self, ctx: TestContext) -> LeakReport:
        self._end_async(ctx)
        self._close_orm(ctx)
        report = LeakReport()
        if ctx.strategy == "clone":
            own_open = not ctx.connection.closed
            own = ctx.connection.info.backend_pid if own_open else 0
            # Count while our own connection is still open (exactly one backend of ours): a closed
            # connection's backend exits asynchronously and would blur the count.
            if ctx.leak_check and self._backends(ctx.dbname) > (1 if own_open else 0):
                report.connections = self._leaked(ctx, ctx.dbname, exclude=[own])
            if own_open and not report.connections and self._recycle(ctx.connection):
                self._clone_pool().give_back(ctx.dbname, ctx.connection)  # no DDL: cheaper than a new clone
                return report
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
            written_sql = self._written_sql.format(who="pid = pg_backend_pid()") + ";" if self.capture else ""
            cur = conn.execute((ROLLBACK_CHECK_SQL + ";" + written_sql + " ROLLBACK").encode())
            row = cur.fetchone()
            if written_sql and cur.nextset():
                self._publish_written(ctx, cur.fetchall(), committed=False)
            while cur.nextset():
                pass
            backends = int(row[0]) if row and row[0] else 0
            others = list(row[1]) if row and row[1] else []
            ours = self.own_pids
            if ctx.leak_check and backends > len(ours):
                report.connections = self._leaked(ctx, self.dbname, exclude=ours)
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
        ours = self.own_pids
        if self._backends(self.dbname) > len(ours):
            if ctx.leak_check:
                report.connections = self._leaked(ctx, self.dbname, exclude=ours)
                terminate(self.admin, [c.pid for c in report.connections])
            # A session still in a transaction (a pool's connection the test left mid-transaction) would make
            # the truncation wait; name it and end it instead, so this test fails and the next ones do not.
            report.blockers = lock_holders(conn, exclude=[*ours, *(c.pid for c in report.connections)])
            conn.rollback()
            terminate(self.admin, [c.pid for c in report.blockers])
        if self.capture is not None:
            self._publish_written(ctx, conn.execute(self._written_sql.format(who="true")).fetchall(), committed=True)
        if ctx.strategy == "none":
            row = conn.execute(f"{INTERNAL}SELECT array_agg(DISTINCT relid::regclass::text) FROM testbed.dirty"
                               ).fetchone()
            dirty = list(row[0]) if row and row[0] else []
            counts = {t: n for t, n in row_counts(conn, dirty).items() if n}
            if counts and ctx.leak_check:
                report.rows = counts
                report.rows_context = "(isolation='none'; testbed cleaned them so the next test starts clean)"
        self._reset(conn)
        conn.rollback()
        return report

    @staticmethod
    def _publish_written(ctx: TestContext, rows: list[Any], committed: bool) -> None:
        if not rows:
            return
        tables = {str(t): (int(n) if n is not None else None) for t, n in rows}
        what = "committed" if committed else "wrote (rolled back afterwards)"
        observe.publish("sql", "written", f"{ctx.name.rsplit('::', 1)[-1]} {what}: "
                        + ", ".join(t if n is None else f"{t} ({n} rows)" for t, n in tables.items()),
                        tables=tables, committed=committed, strategy=ctx.strategy, database=ctx.dbname)

    @staticmethod
    def _recycle(conn: psycopg.Connection[Any]) -> bool:
        """Put a clone back to its template state for the next test, unless its test changed the schema."""
        try:
            conn.rollback()
            if conn.execute(f"{INTERNAL}SELECT EXISTS (SELECT 1 FROM testbed.ddl)").fetchone() != (False,):
                return False
            conn.rollback()
            conn.autocommit = True
            try:
                conn.execute(f"{INTERNAL}DISCARD ALL")  # the session's state too: settings, temp objects, locks
                conn.execute(f"{INTERNAL}SET lock_timeout = '{RESET_LOCK_TIMEOUT}'")
                conn.execute(f"{INTERNAL}SELECT testbed.reset(), testbed.reset_sequences()")
            finally:
                conn.autocommit = False
        except psycopg.Error:
            return False
        return True

    def _clone_pool(self) -> ClonePool:
        # Started on the first clone-isolated test: sessions that never clone pay nothing.
        if self._clones is None:
            def create(admin: psycopg.Connection[Any]) -> str:
                name = f"{self.dbname}_c{next(self._clone_counter)}"
                admin.execute(clone_sql(name, self.endpoint.template, self.endpoint.major))
                if self.capture is not None:
                    enable_statement_log(admin, name)
                    self.capture.watch(name)
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
        conn.execute(f"{INTERNAL}SET lock_timeout = '{RESET_LOCK_TIMEOUT}'")
        try:
            row = conn.execute(f"{INTERNAL}SELECT testbed.reset()").fetchone()
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
        if self.capture is not None:
            self.capture.close()
        if self._clones is not None:
            leftovers = self._clones.close()
            if self.endpoint.alive():
                for name in leftovers:
                    self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if self._sessions is not None:
            self._sessions.engine.dispose(close=False)
        if self._async_sessions is not None:
            self._async_sessions.dispose()
        if self._async is not None:
            self._async.close_now()
        if self._conn is not None:
            self._conn.in_test = False
            try:
                self._conn.close()
            except psycopg.Error:
                pass
        if self.endpoint.alive():
            for name in list(self._created):
                try:
                    self.drop(name)
                except psycopg.Error:
                    pass
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self._claim is not None:
            self._claim.close()  # the keeper drops the database and what is left of its clones
            self._claim = None
