"""Per-test isolation for MariaDB/MySQL: one database per (xdist) worker copied from the template, and a
strategy per test on top of it.

- ``rollback`` (default): the test runs in one transaction on the worker's long-lived connection, rolled
  back afterwards. ``commit()`` / ``rollback()`` on that connection are emulated with a savepoint.
  MySQL commits DDL implicitly (CREATE/ALTER/DROP/TRUNCATE/RENAME...), and a ``COMMIT`` sent as SQL is a
  real commit: testbed detects both (its start savepoint is gone), rebuilds the worker database so later
  tests are unaffected, and fails the test saying so. Writes committed by *other* connections (the
  application's own pool) are detected too, undone, and reported.
- ``truncate``: code may commit on any connection; afterwards exactly the tables written (by any
  connection; reads do not count) are truncated and their seed rows restored from the template.
- ``clone``: a fresh database per test, copied from the template, dropped afterwards. The one to use for
  tests that run DDL.
- ``none``: nothing is undone during the test; written tables are cleaned afterwards so the next test
  starts from the template state.

How writes are tracked: MySQL has no statement-level triggers, so each table of a worker database gets
``AFTER INSERT/UPDATE/DELETE ... FOR EACH ROW`` triggers that mark (database, table, connection id) in a
MEMORY table of testbed's own database. MEMORY is non-transactional: a mark survives a rollback (at worst a
table is cleaned that needed nothing) and takes only a statement-long table lock, so tracking never makes
two application transactions wait on each other. Row counters in information_schema are approximate and
performance_schema costs ~100 MB and start-up time, hence triggers.

MySQL has no ``CREATE DATABASE ... TEMPLATE``: a copy replays the template's ``SHOW CREATE`` statements
(tables with their foreign keys, views, triggers, routines) and copies the seed rows.

Guard: testbed only truncates or drops databases listed in its registry (``testbed_admin.owned``), which
only testbed writes when it creates a database. On a shared server (runner = "existing") each database made
here also carries its run's marker (``testbed.schema.mysql_owner``), and the worker database is dropped at
the end of the session.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pymysql
import pymysql.connections

from testbed import observe
from testbed.config import ISOLATION_STRATEGIES
from testbed.engines.mysql import ADMIN_DB, MysqlEndpoint
from testbed.errors import ConfigError, GuardError, IsolationError, LeakError, TestbedError
from testbed.isolation.context import BaseTestContext, worker_db_name
from testbed.schema import mysql_owner
from testbed.schema.template import RunOwner

DIRTY_TABLE = f"`{ADMIN_DB}`.dirty"
TRIGGER_PREFIX = "testbed_dirty_"
# A test that leaves a transaction open on another connection must not hang DROP/TRUNCATE forever.
LOCK_WAIT_TIMEOUT = 10
LEAK_GRACE_SECONDS = 0.5
_SAVEPOINT_TEST = "testbed_test"
_COM_RESET_CONNECTION = 0x1F
_SAVEPOINT_COMMIT = "testbed_commit"


def quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _error_code(exc: BaseException) -> int:
    return int(exc.args[0]) if exc.args and isinstance(exc.args[0], int) else 0


class TestbedConnection(pymysql.connections.Connection):  # type: ignore[misc]
    """A PyMySQL connection whose commit/rollback become savepoints while a rollback-isolated test runs."""

    __test__ = False
    emulating = False

    def begin(self) -> None:
        if not self.emulating:
            super().begin()

    def commit(self) -> None:
        if self.emulating:
            self._execute_plain(f"SAVEPOINT {_SAVEPOINT_COMMIT}")
        else:
            super().commit()

    def rollback(self) -> None:
        if self.emulating:
            self._execute_plain(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT_COMMIT}")
        else:
            super().rollback()

    def autocommit(self, value: bool) -> None:
        if self.emulating and value:
            raise IsolationError(
                "autocommit cannot be turned on inside a rollback-isolated test: every statement would be "
                "committed for good. Use @pytest.mark.testbed(isolation='truncate') for code that needs it.",
                boundary="MariaDB isolation",
            )
        super().autocommit(value)

    def close(self) -> None:
        if self.emulating:
            return  # lent to a test: testbed closes it at the end of the session
        super().close()

    def reset_session(self) -> None:
        """Forget what a test left in the session: temporary tables, user variables, session settings.

        COM_RESET_CONNECTION (MariaDB 10.2+, MySQL 5.7+) keeps the connection and its database, and costs
        one round trip; the next test must not see a ``CREATE TEMPORARY TABLE`` of this one.
        """
        self._execute_command(_COM_RESET_CONNECTION, b"")
        self._read_ok_packet()
        self._execute_plain(f"SET NAMES {self.charset}, autocommit = {int(bool(self.autocommit_mode))}")

    def close_for_real(self) -> None:
        self.emulating = False
        with contextlib.suppress(Exception):
            super().close()

    def _execute_plain(self, sql: str) -> None:
        with self.cursor() as cur:
            cur.execute(sql)


@dataclass
class TemplateLayout:
    """What a copy of the template is made of, read once per session."""

    tables: list[str]
    create: list[tuple[str, str, str]]  # (kind, sql_mode, statement) in creation order
    seed_tables: list[str]
    seed_columns: dict[str, list[str]] = field(default_factory=dict)
    # parent -> tables whose rows a write to parent may change through ON DELETE/UPDATE CASCADE / SET NULL /
    # SET DEFAULT: MySQL fires no trigger for those cascaded changes, so they are cleaned with the parent.
    cascades: dict[str, set[str]] = field(default_factory=dict)

    def with_cascades(self, tables: set[str]) -> set[str]:
        """``tables`` plus every table a cascading foreign key reaches from them (transitively)."""
        out, todo = set(tables), list(tables)
        while todo:
            for child in self.cascades.get(todo.pop(), ()):
                if child not in out:
                    out.add(child)
                    todo.append(child)
        return out


@dataclass
class TestContext(BaseTestContext):
    """The database state of one running MariaDB/MySQL test."""

    connection: pymysql.connections.Connection[Any]
    first_connection_id: int = 0
    own_connections: list[pymysql.connections.Connection[Any]] = field(default_factory=list)


class MysqlWorkerDatabase:
    """This worker's database and its long-lived connections; sets up and undoes each test."""

    def __init__(
        self, endpoint: MysqlEndpoint, worker_id: str = "main", seed_tables: tuple[str, ...] | None = None
    ) -> None:
        self.endpoint = endpoint
        self.dbname = worker_db_name(worker_id, endpoint.db_prefix)
        self.template = endpoint.template
        # On a shared server (runner = "existing"): the run whose marker every database made here carries.
        self.owner = RunOwner(**endpoint.owner) if endpoint.owner else None
        self.boundary = f"{endpoint.flavor} isolation"
        self._configured_seeds = seed_tables
        self._clone_counter = itertools.count(1)
        self._admin: pymysql.connections.Connection[Any] | None = None
        self._test_conn: TestbedConnection | None = None
        self._layout: TemplateLayout | None = None
        # InnoDB table ids of the worker database: a TRUNCATE or a table-rebuilding ALTER by the code under
        # test gives a table a new id, and fires no trigger.
        self._ids: dict[str, tuple[int, int]] | None = None
        self._id_source: str | None = None
        self.timings: dict[str, float] = {}
        self.capture: Any = None  # MysqlStatementCapture, once enable_capture() found the server's log

    def enable_capture(self) -> bool:
        """Log every statement (the slow query log with long_query_time = 0) and publish this worker's per test
        (testbed.observe). False when the server keeps no log testbed can read (one testbed did not start)."""
        from pathlib import Path

        from testbed.isolation.mysql_statement_log import MysqlStatementCapture, enable

        if self.capture is not None:
            return True
        if not getattr(self.endpoint, "statement_log", ""):
            return False
        enable(self.admin())
        if self._test_conn is not None and self._test_conn.open:
            with self._test_conn.cursor() as cur:
                cur.execute("SET SESSION long_query_time = 0")
        self.capture = MysqlStatementCapture(Path(self.endpoint.statement_log), self._mark, self._own_threads,
                                             {self.dbname}, self.endpoint.flavor)
        return True

    def _mark(self, token: str) -> None:
        self._exec(f"SELECT '{token}'")

    def _own_threads(self) -> list[int]:
        found = []
        for conn in (self._test_conn, self._admin):
            if conn is not None and conn.open:
                found.append(int(conn.thread_id()))
        return found

    # -- connections -------------------------------------------------------------------------------
    def admin(self) -> pymysql.connections.Connection[Any]:
        """testbed's own autocommit connection (root over the socket), reconnected when dropped."""
        if self._admin is None or not self._admin.open:
            self._admin = self.endpoint.connect(autocommit=True)
            with self._admin.cursor() as cur:
                cur.execute(f"SET SESSION lock_wait_timeout = {LOCK_WAIT_TIMEOUT}")
        return self._admin

    def _exec(self, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
        conn = self.admin()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                return list(cur.fetchall())
        except pymysql.err.OperationalError:
            self.endpoint.check_alive(f"running {sql[:60]!r}")
            raise

    def url(self, dbname: str | None = None) -> str:
        return self.endpoint.database_url(dbname or self.dbname)

    # -- the template's layout ------------------------------------------------------------------------
    def layout(self) -> TemplateLayout:
        if self._layout is None:
            self._layout = self._read_layout()
        return self._layout

    def _read_layout(self) -> TemplateLayout:
        template = self.template
        tpl = quote_ident(template)
        rows = self._exec(
            "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
            "ORDER BY TABLE_NAME", (template,)
        )
        tables = [r[0] for r in rows if r[1] == "BASE TABLE"]
        views = [r[0] for r in rows if r[1] == "VIEW"]
        create: list[tuple[str, str, str]] = []
        for t in tables:
            ddl = self._exec(f"SHOW CREATE TABLE {tpl}.{quote_ident(t)}")[0][1]
            create.append(("table", "", ddl))
        # Views may depend on views: ordered by dependency below, by retrying until all are created.
        prefix = f"{tpl}."
        for v in views:
            row = self._exec(f"SHOW CREATE VIEW {tpl}.{quote_ident(v)}")[0]
            create.append(("view", "", row[1].replace(prefix, "")))
        for (name,) in self._exec(
            "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s AND ROUTINE_TYPE = %s",
            (template, "PROCEDURE"),
        ):
            row = self._exec(f"SHOW CREATE PROCEDURE {tpl}.{quote_ident(name)}")[0]
            create.append(("routine", row[1], row[2]))
        for (name,) in self._exec(
            "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s AND ROUTINE_TYPE = %s "
            "AND ROUTINE_NAME <> %s", (template, "FUNCTION", mysql_owner.MARKER_FUNCTION),  # each copy gets its own
        ):
            row = self._exec(f"SHOW CREATE FUNCTION {tpl}.{quote_ident(name)}")[0]
            create.append(("routine", row[1], row[2]))
        for (name,) in self._exec(
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s "
            "ORDER BY EVENT_OBJECT_TABLE, ACTION_ORDER", (template,)
        ):
            row = self._exec(f"SHOW CREATE TRIGGER {tpl}.{quote_ident(name)}")[0]
            create.append(("trigger", row[1], row[2]))
        if self._configured_seeds is not None:
            unknown = sorted(set(self._configured_seeds) - set(tables))
            if unknown:
                raise ConfigError(
                    f"[tool.testbed.mysql] seed_tables names {', '.join(unknown)}, which the migrated template "
                    f"does not have. Its tables: {', '.join(tables) or '(none)'}."
                )
            seeds = list(self._configured_seeds)
        elif tables:
            probe = " UNION ALL ".join(
                f"SELECT {i} FROM {tpl}.{quote_ident(t)} HAVING COUNT(*) > 0" for i, t in enumerate(tables)
            )
            seeds = [tables[int(r[0])] for r in self._exec(probe)]
        else:
            seeds = []
        columns: dict[str, list[str]] = {}
        if seeds:
            for tname, col in self._exec(
                "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
                "AND EXTRA NOT LIKE '%%GENERATED%%' ORDER BY TABLE_NAME, ORDINAL_POSITION", (template,)
            ):
                columns.setdefault(tname, []).append(col)
        cascades: dict[str, set[str]] = {}
        for child, parent in self._exec(
            "SELECT TABLE_NAME, REFERENCED_TABLE_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS "
            "WHERE CONSTRAINT_SCHEMA = %s AND UNIQUE_CONSTRAINT_SCHEMA = %s "
            "AND (DELETE_RULE <> 'RESTRICT' AND DELETE_RULE <> 'NO ACTION' "
            "OR UPDATE_RULE <> 'RESTRICT' AND UPDATE_RULE <> 'NO ACTION')", (template, template)
        ):
            cascades.setdefault(str(parent), set()).add(str(child))
        return TemplateLayout(tables=tables, create=create, seed_tables=seeds, seed_columns=columns,
                              cascades=cascades)

    # -- creating, registering and dropping copies -----------------------------------------------------
    def _owned(self, name: str) -> bool:
        return bool(self._exec(f"SELECT 1 FROM `{ADMIN_DB}`.owned WHERE name = %s", (name,)))

    def guard(self, name: str, action: str) -> None:
        """Refuse to touch a database testbed did not create."""
        if not self._owned(name):
            raise GuardError(
                f"refusing to {action} database {name!r}: testbed did not create it (it is not in "
                f"{ADMIN_DB}.owned). testbed only truncates, drops or clones its own databases.",
                boundary=self.boundary,
            )

    def create_copy(self, name: str, *, track_writes: bool) -> None:
        """Create database ``name`` from the template: schema objects, seed rows, write tracking."""
        layout = self.layout()
        existing = self._exec("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (name,))
        if existing:
            self.drop(name)
        t0 = time.perf_counter()
        q = quote_ident(name)
        self._exec(f"INSERT INTO `{ADMIN_DB}`.owned (name) VALUES (%s)", (name,))
        self._exec(f"CREATE DATABASE {q}")
        conn = self.admin()
        if self.owner is not None:  # at once: a run killed while copying leaves a database the next one may drop
            with conn.cursor() as cur:
                mysql_owner.mark(cur, name, owner=self.owner)
        conn.select_db(name)
        try:
            with conn.cursor() as cur:
                cur.execute("SET SESSION foreign_key_checks = 0")
                cur.execute("SELECT @@SESSION.sql_mode")
                default_mode = cur.fetchone()[0]
                pending = list(layout.create)
                for _ in range(len(pending) + 1):  # views on views: retry in dependency order
                    failed: list[tuple[str, str, str]] = []
                    last: BaseException | None = None
                    for kind, mode, ddl in pending:
                        cur.execute("SET SESSION sql_mode = %s", (mode or default_mode,))
                        try:
                            cur.execute(ddl)
                        except pymysql.err.MySQLError as exc:
                            if kind != "view":
                                raise IsolationError(
                                    f"copying the template into {name} failed on: {ddl[:300]}\n"
                                    f"{self.endpoint.flavor} said: {exc}",
                                    boundary=self.boundary,
                                ) from None
                            failed.append((kind, mode, ddl))
                            last = exc
                    if not failed:
                        break
                    if len(failed) == len(pending):
                        raise IsolationError(
                            f"copying the template's views into {name} failed: {last}", boundary=self.boundary
                        )
                    pending = failed
                cur.execute("SET SESSION sql_mode = %s", (default_mode,))
                for t in layout.seed_tables:
                    cur.execute(self._reseed_sql(name, t))
                if track_writes:
                    for t in layout.tables:
                        for event in ("INSERT", "UPDATE", "DELETE"):
                            cur.execute(
                                f"CREATE TRIGGER {quote_ident(trigger_name(event, t))} "
                                f"AFTER {event} ON {quote_ident(t)} FOR EACH ROW "
                                f"INSERT IGNORE INTO {DIRTY_TABLE} (db, tbl, conn) "
                                f"VALUES ({_literal(name)}, {_literal(t)}, CONNECTION_ID())"
                            )
                cur.execute("SET SESSION foreign_key_checks = 1")
        finally:
            if conn.open:
                conn.select_db(ADMIN_DB)
        if name == self.dbname:
            self._ids = self.table_ids(name)
        self.timings.setdefault("copy_ms", (time.perf_counter() - t0) * 1000)

    def _reseed_sql(self, dbname: str, table: str) -> str:
        cols = ", ".join(quote_ident(c) for c in self.layout().seed_columns.get(table, []))
        return (
            f"INSERT INTO {quote_ident(dbname)}.{quote_ident(table)} ({cols}) "
            f"SELECT {cols} FROM {quote_ident(self.template)}.{quote_ident(table)}"
        )

    def drop(self, name: str) -> None:
        """Drop a database testbed created (GuardError for any other)."""
        self.guard(name, "drop")
        self._kill_connections_to(name)
        self._exec(f"DROP DATABASE IF EXISTS {quote_ident(name)}")
        self._exec(f"DELETE FROM {DIRTY_TABLE} WHERE db = %s", (name,))
        self._exec(f"DELETE FROM `{ADMIN_DB}`.owned WHERE name = %s", (name,))

    def _kill_connections_to(self, name: str) -> None:
        if name == self.dbname and self._test_conn is not None:
            # Our own rollback connection, idle between tests, goes too (the worker database is being
            # rebuilt): closed here, so the next rollback test opens a new one instead of finding it dead.
            self._test_conn.close_for_real()
            self._test_conn = None
        me = self.admin().thread_id()
        for (cid,) in self._exec(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND ID <> %s", (name, me)
        ):
            with contextlib.suppress(pymysql.err.MySQLError):
                self._exec(f"KILL {int(cid)}")

    def clean_tables(self, dbname: str, tables: list[str] | set[str]) -> None:
        """Truncate ``tables`` of ``dbname`` (and tables their cascading foreign keys reach) and restore
        their seed rows from the template."""
        self.guard(dbname, "truncate")
        seeds = set(self.layout().seed_tables)
        known = set(self.layout().tables)
        tables = self.layout().with_cascades(set(tables))
        self._exec("SET SESSION foreign_key_checks = 0")
        try:
            for t in sorted(tables):
                if t not in known:
                    continue
                # TRUNCATE also resets AUTO_INCREMENT, so ids restart as in the template.
                try:
                    self._exec(f"TRUNCATE TABLE {quote_ident(dbname)}.{quote_ident(t)}")
                except pymysql.err.OperationalError as exc:
                    if _error_code(exc) != 1205:
                        raise
                    raise IsolationError(
                        f"could not truncate {dbname}.{t} within {LOCK_WAIT_TIMEOUT} s: another connection keeps a "
                        f"transaction open on it. Open transactions now:\n{self._open_transactions()}\n"
                        "Commit or roll back (and close) connections before the test ends.",
                        boundary=self.boundary,
                    ) from None
                if t in seeds:
                    self._exec(self._reseed_sql(dbname, t))
        finally:
            self._exec("SET SESSION foreign_key_checks = 1")
        self._exec(f"DELETE FROM {DIRTY_TABLE} WHERE db = %s", (dbname,))
        if dbname == self.dbname:
            self._ids = self.table_ids(dbname)  # TRUNCATE gave the tables new ids

    def _open_transactions(self) -> str:
        rows = self._exec(
            "SELECT p.ID, p.USER, p.HOST, p.DB, t.trx_started, LEFT(COALESCE(t.trx_query, p.INFO, ''), 200) "
            "FROM information_schema.INNODB_TRX t JOIN information_schema.PROCESSLIST p "
            "ON p.ID = t.trx_mysql_thread_id"
        )
        return "\n".join(f"    - connection {r[0]} ({r[1]}@{r[2]}, db {r[3]}) since {r[4]}: {r[5]}" for r in rows) \
            or "    (none)"

    def table_ids(self, dbname: str) -> dict[str, tuple[int, int]] | None:
        """InnoDB's (id, column count) of each table of ``dbname`` (None when the server does not expose them).

        TRUNCATE and table-rebuilding ALTERs give a new id, an instant ADD COLUMN a new column count.
        """
        sources = [self._id_source] if self._id_source else list(_TABLE_ID_SOURCES)
        for source in sources:
            try:
                rows = self._exec(f"SELECT NAME, TABLE_ID, N_COLS FROM {source} WHERE NAME LIKE %s",
                                  (f"{dbname}/%",))
            except pymysql.err.MySQLError:
                continue
            self._id_source = source
            prefix = f"{dbname}/"
            return {str(n)[len(prefix):]: (int(i), int(c)) for n, i, c in rows if str(n).startswith(prefix)}
        return None

    def _unexpected_ddl(self, dbname: str, tables: set[str]) -> bool:
        """Whether ``tables`` (whose ids changed) differ from the template's definition, or are unknown."""
        wanted = {_normal_ddl(ddl) for kind, _, ddl in self.layout().create if kind == "table"}
        for t in tables:
            if t not in self.layout().tables:
                return True
            ddl = self._exec(f"SHOW CREATE TABLE {quote_ident(dbname)}.{quote_ident(t)}")[0][1]
            if _normal_ddl(ddl) not in wanted:
                return True
        return False

    def dirty(self, dbname: str) -> list[tuple[str, int]]:
        """(table, connection id) pairs written in ``dbname`` since it was last cleaned."""
        return [(str(t), int(c)) for t, c in self._exec(f"SELECT tbl, conn FROM {DIRTY_TABLE} WHERE db = %s",
                                                         (dbname,))]

    # -- the worker database -----------------------------------------------------------------------
    def setup(self) -> MysqlWorkerDatabase:
        """Create this worker's database from the template (once per session)."""
        t0 = time.perf_counter()
        self.create_copy(self.dbname, track_writes=True)
        self.timings["worker_db_ms"] = (time.perf_counter() - t0) * 1000
        return self

    def _test_connection(self) -> TestbedConnection:
        if self._test_conn is None or not self._test_conn.open:
            self.endpoint.check_alive("connecting")
            self._test_conn = TestbedConnection(**self.endpoint.connect_kwargs(self.dbname), autocommit=False)
        return self._test_conn

    def _new_connection(self, dbname: str) -> pymysql.connections.Connection[Any]:
        return self.endpoint.connect(dbname, autocommit=False)

    def begin(self, name: str, strategy: str, leak_check: bool = True) -> TestContext:
        """Prepare the database state for one test."""
        if strategy not in ISOLATION_STRATEGIES:
            raise ConfigError(f"isolation {strategy!r}: choose one of {', '.join(ISOLATION_STRATEGIES)}.")
        self.endpoint.check_alive(f"setting up {name}")
        first_id = 0
        if leak_check:
            first_id = int(self._exec("SELECT MAX(ID) FROM information_schema.PROCESSLIST")[0][0]) + 1
        if strategy == "rollback":
            conn = self._test_connection()
            try:
                conn.emulating = False
                conn.begin()
                with conn.cursor() as cur:
                    cur.execute(f"SAVEPOINT {_SAVEPOINT_TEST}")
                    cur.execute(f"SAVEPOINT {_SAVEPOINT_COMMIT}")
            except pymysql.err.OperationalError:
                self.endpoint.check_alive(f"setting up {name}")
                raise
            conn.emulating = True
            return TestContext(name, strategy, self.dbname, self.url(), conn, leak_check, first_id)
        if strategy == "clone":
            clone = f"{self.dbname}_t{next(self._clone_counter)}"
            self.create_copy(clone, track_writes=False)
            conn = self._new_connection(clone)
            return TestContext(name, strategy, clone, self.url(clone), conn, leak_check, first_id, [conn])
        conn = self._new_connection(self.dbname)
        return TestContext(name, strategy, self.dbname, self.url(), conn, leak_check, first_id, [conn])

    def end(self, ctx: TestContext) -> None:
        """Undo the test's changes; raise IsolationError / LeakError when the test broke isolation."""
        if not self.endpoint.alive():
            raise self.endpoint.died_error(f"after {ctx.name}")
        problems: list[str] = []
        leaked = self._leaked_connections(ctx) if ctx.leak_check else []
        for cid, _ in leaked:  # killed first: their open transactions would block the clean-up
            with contextlib.suppress(pymysql.err.MySQLError):
                self._exec(f"KILL {int(cid)}")
        for conn in ctx.own_connections:
            with contextlib.suppress(Exception):
                conn.close()
        if ctx.strategy == "rollback":
            problems += self._end_rollback(ctx)
        elif ctx.strategy == "clone":
            self.drop(ctx.dbname)
        else:
            problems += self._end_truncate(ctx)
        if leaked:
            lines = "\n".join(f"    - connection {cid}: {what}" for cid, what in leaked)
            error: IsolationError | LeakError = LeakError(
                f"{ctx.name} left {len(leaked)} database connection(s) open to {ctx.dbname}:\n{lines}\n"
                "Close them in the test (or its fixtures); testbed has killed them. To allow it, use "
                "@pytest.mark.testbed(leak_check=False, reason='...').",
                boundary=self.boundary,
            )
        elif problems:
            error = IsolationError("\n".join(problems), boundary=self.boundary)
        else:
            return
        observe.publish("sql", "leak", str(error).splitlines()[0], test=ctx.name)
        raise error

    def _end_truncate(self, ctx: TestContext) -> list[str]:
        written = {t for t, _ in self.dirty(self.dbname)}
        now = self.table_ids(self.dbname) if self._ids is not None else None
        if now is not None and self._ids is not None and now != self._ids:
            changed = {t for t in set(now) | set(self._ids) if now.get(t) != self._ids.get(t)}
            if set(now) != set(self._ids) or self._unexpected_ddl(self.dbname, changed):
                self.create_copy(self.dbname, track_writes=True)
                return [
                    f"{ctx.name} changed the schema of {self.dbname} (DDL on {', '.join(sorted(changed))}); "
                    "testbed rebuilt the worker database so later tests are unaffected. Use "
                    "@pytest.mark.testbed(isolation='clone') for tests that run DDL."
                ]
            written |= changed  # truncated by the code under test: its seed rows come back
        if written:
            self.clean_tables(self.dbname, written)
        return []

    def _leaked_connections(self, ctx: TestContext) -> list[tuple[int, str]]:
        mine = {c.thread_id() for c in ctx.own_connections if c.open}
        if self._test_conn is not None and self._test_conn.open:
            mine.add(self._test_conn.thread_id())
        mine.add(self.admin().thread_id())
        sql = (
            "SELECT ID, USER, HOST, COMMAND, STATE, LEFT(COALESCE(INFO, ''), 200) FROM information_schema.PROCESSLIST "
            "WHERE ID >= %s AND DB = %s"
        )
        # A connection the client has just closed stays listed until its server thread sees the QUIT: give
        # candidates a moment to go before calling them leaked (no wait at all when there are none).
        deadline = time.monotonic() + LEAK_GRACE_SECONDS
        while True:
            rows = [r for r in self._exec(sql, (ctx.first_connection_id, ctx.dbname)) if int(r[0]) not in mine]
            if not rows or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        return [(int(r[0]), f"{r[1]}@{r[2]} {r[3]} {r[4] or ''} {r[5]}".strip()) for r in rows]

    def _end_rollback(self, ctx: TestContext) -> list[str]:
        conn = self._test_connection()
        conn.emulating = False
        problems: list[str] = []
        committed = False
        try:
            with conn.cursor() as cur:
                try:
                    cur.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT_TEST}")
                except pymysql.err.MySQLError as exc:
                    if _error_code(exc) != 1305:  # SAVEPOINT does not exist: the transaction was committed
                        raise
                    committed = True
            conn.rollback()
            conn.reset_session()
        except pymysql.err.OperationalError:
            self.endpoint.check_alive(f"rolling back {ctx.name}")
            raise
        marks = self.dirty(self.dbname)
        own = conn.thread_id()
        others = sorted({t for t, c in marks if c != own})
        if committed:
            # DDL may have changed the schema: rebuild the worker database from the template.
            conn.close_for_real()
            self._test_conn = None
            self.create_copy(self.dbname, track_writes=True)
            problems.append(
                f"{ctx.name} committed its transaction on the rollback-isolated connection (MySQL/MariaDB "
                "commits DDL such as CREATE, ALTER, DROP, TRUNCATE or RENAME implicitly, and COMMIT sent as "
                "SQL is a real commit; or the server rolled it back whole after a deadlock), so a rollback "
                "could not be relied on to undo its writes. testbed rebuilt the worker "
                "database so later tests are unaffected. Use @pytest.mark.testbed(isolation='clone') for "
                "tests that run DDL, and conn.commit() (emulated) rather than executing COMMIT."
            )
        elif others:
            self.clean_tables(self.dbname, set(others))
            problems.append(
                f"{ctx.name} committed writes to {', '.join(others)} through another connection (e.g. the "
                "application's own pool); a rollback cannot undo those. testbed truncated them. Use "
                "@pytest.mark.testbed(isolation='truncate') for tests whose code commits on its own connections."
            )
        elif marks:
            self._exec(f"DELETE FROM {DIRTY_TABLE} WHERE db = %s", (self.dbname,))
        return problems

    def close(self) -> None:
        """Close testbed's connections; on a shared server, drop this worker's database too (a server of
        testbed's own goes at session end, and its databases with it)."""
        if self.capture is not None:
            self.capture.close()
        if self.owner is not None:
            with contextlib.suppress(pymysql.err.MySQLError, TestbedError):
                self.drop(self.dbname)
        if self._test_conn is not None:
            self._test_conn.close_for_real()
        if self._admin is not None:
            with contextlib.suppress(Exception):
                self._admin.close()

    @contextlib.contextmanager
    def isolated(self, name: str, strategy: str = "rollback", leak_check: bool = True) -> Iterator[TestContext]:
        """``with worker.isolated("my test", "truncate") as ctx: ctx.connection ...`` outside pytest."""
        ctx = self.begin(name, strategy, leak_check)
        try:
            yield ctx
        finally:
            self.end(ctx)


_TABLE_ID_SOURCES = ("information_schema.INNODB_SYS_TABLES", "information_schema.INNODB_TABLES")  # MariaDB, MySQL 8
_AUTO_INCREMENT = re.compile(r" AUTO_INCREMENT=\d+")


def _normal_ddl(ddl: str) -> str:
    return _AUTO_INCREMENT.sub("", ddl)


def trigger_name(event: str, table: str) -> str:
    """The name of testbed's write-tracking trigger (MySQL names are at most 64 characters)."""
    name = f"{TRIGGER_PREFIX}{event.lower()[:3]}_{table}"
    if len(name) > 64:
        digest = hashlib.sha256(table.encode()).hexdigest()[:8]
        name = f"{name[:55]}_{digest}"
    return name


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
