"""Two transactions interleaved at a chosen statement, the same way on every run.

``testbed.interleave(first, second, pause_first_after="SELECT balance")`` runs ``first`` until it has
executed a statement matching the pattern (its read), holds it there, runs ``second`` to the end (its
commit), then lets ``first`` go on. A lost update under READ COMMITTED, a serialization failure under
REPEATABLE READ or SERIALIZABLE, a check-then-insert that inserts twice: each happens on every run,
because nothing depends on timing.

How the pause is made: while ``interleave`` runs, statements sent through psycopg 3 cursors (directly or
under SQLAlchemy) and through any SQLAlchemy engine pass a hook. The first statement matching the pattern,
on any thread of this process (so a web app serving the first's request on its own thread is paused
too), blocks right after the server answered it; the connection stays inside its transaction.

When ``second`` cannot finish because it waits for a lock ``first`` holds (the code under test locks
correctly: ``SELECT ... FOR UPDATE``, a unique index, an advisory lock), that is seen on the server
(PostgreSQL's ``pg_blocking_pids``; MariaDB's and MySQL's InnoDB lock waits) and ``first`` is released at
once: the interleaving the code forbids does not happen, and the outcomes say so
(``second_waited_for_first``). Without that check such a test would hang.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from testbed import stacks
from testbed.concurrency import CallOutcome, ConcurrencyError

DEFAULT_TIMEOUT = 30.0
GRACE = 5.0  # after a timeout, how long the sides get to finish once first is released
POLL_INTERVAL = 0.005  # how often the server is asked whether second waits for first's locks

# Any session on the server that waits for a lock the paused connection holds.
PG_BLOCKED_BY_SQL = "SELECT count(*) FROM pg_stat_activity WHERE %(pid)s = ANY(pg_blocking_pids(pid))"
INNODB_CACHE_IDLE = 0.15  # seconds between two reads of InnoDB's lock-wait tables (its cache refreshes after 0.1 s)
MYSQL_BLOCKED_BY_SQL = (  # sys (MySQL 5.7+, MariaDB 10.6+), else information_schema (MariaDB)
    "SELECT COUNT(*) FROM sys.innodb_lock_waits WHERE blocking_pid = %s",
    "SELECT COUNT(*) FROM information_schema.INNODB_LOCK_WAITS w JOIN information_schema.INNODB_TRX b "
    "ON b.trx_id = w.blocking_trx_id WHERE b.trx_mysql_thread_id = %s",
)

Pattern = str | re.Pattern[str] | Callable[[str], bool]


@dataclass(frozen=True)
class Interleaved:
    """What happened: each side's outcome, where ``first`` was paused, and whether ``second`` had to wait."""

    first: CallOutcome[Any]
    second: CallOutcome[Any]
    paused_after: str | None  # the statement ``first`` was held after; None if it never ran one that matched
    second_waited_for_first: bool  # second blocked on a lock first held, so first was let go early

    @property
    def paused(self) -> bool:
        return self.paused_after is not None

    def describe(self) -> str:
        where = (f"first paused after {self.paused_after!r}" if self.paused
                 else "first never ran a matching statement (it ran to the end alone, then second ran)")
        wait = "; second waited for a lock first held, so first was released" if self.second_waited_for_first else ""
        return f"{where}{wait}; first: {self.first.describe()}; second: {self.second.describe()}"


def _matcher(pattern: Pattern) -> Callable[[str], bool]:
    if callable(pattern) and not isinstance(pattern, re.Pattern):
        return pattern
    regex = pattern if isinstance(pattern, re.Pattern) else re.compile(re.escape(pattern), re.IGNORECASE)
    return lambda statement: regex.search(statement) is not None


class _Run:
    """The state of one interleaving, shared with the statement hooks."""

    def __init__(self, match: Callable[[str], bool]) -> None:
        self.match = match
        self.pausing = True  # phase 1: the first matching statement is held
        self.paused = threading.Event()
        self.release = threading.Event()
        self.paused_after: str | None = None
        self.watch: Callable[[], _BlockedWatch] | None = None  # how to ask the server about the held session
        self._lock = threading.Lock()

    def after_statement(self, statement: str, watch: Callable[[], _BlockedWatch] | None) -> None:
        if not self.match(statement):
            return
        with self._lock:  # two threads may match at once: exactly one is held
            if not self.pausing:
                return
            self.pausing = False
        self.paused_after = statement.strip()
        self.watch = watch
        self.paused.set()
        self.release.wait()


_active: _Run | None = None
_active_lock = threading.Lock()


def _statement_text(query: Any, cursor: Any) -> str:
    if isinstance(query, str):
        return query
    if isinstance(query, bytes | bytearray | memoryview):
        return bytes(query).decode("utf-8", "replace")
    as_string = getattr(query, "as_string", None)  # psycopg.sql.Composable
    if as_string is not None:
        try:
            return str(as_string(cursor))
        except Exception:
            return str(query)
    return str(query)


class _BlockedWatch:
    """Asks the server whether any session waits for a lock the paused session holds."""

    def blocked(self) -> bool:
        return False

    def close(self) -> None:
        pass


class _PostgresWatch(_BlockedWatch):
    def __init__(self, dsn: str, password: str | None, pid: int) -> None:
        import psycopg

        self.pid = pid
        self.conn = psycopg.connect(dsn, password=password, autocommit=True, connect_timeout=5,
                                    application_name="testbed-interleave")

    def blocked(self) -> bool:
        row = self.conn.execute(PG_BLOCKED_BY_SQL, {"pid": self.pid}).fetchone()
        return bool(row and row[0])

    def close(self) -> None:
        self.conn.close()


class _MysqlWatch(_BlockedWatch):
    def __init__(self, params: dict[str, Any], thread_id: int) -> None:
        import pymysql

        self.thread_id = thread_id
        self.conn = pymysql.connect(**params, autocommit=True, connect_timeout=5)
        self.sql = ""
        self.last_read = 0.0
        for sql in MYSQL_BLOCKED_BY_SQL:
            try:
                with self.conn.cursor() as cur:
                    cur.execute(sql, (thread_id,))
                self.sql = sql
                self.last_read = time.monotonic()
                break
            except pymysql.MySQLError:
                continue

    def blocked(self) -> bool:
        # InnoDB refreshes its lock-wait tables only when they were not read for 0.1 s: polling faster would
        # read a stale snapshot forever.
        if not self.sql or time.monotonic() - self.last_read < INNODB_CACHE_IDLE:
            return False
        self.last_read = time.monotonic()
        with self.conn.cursor() as cur:
            cur.execute(self.sql, (self.thread_id,))
            row = cur.fetchone()
        return bool(row and row[0])

    def close(self) -> None:
        self.conn.close()


def _postgres_watch(conn: Any) -> Callable[[], _BlockedWatch] | None:
    """How to watch the server for sessions blocked by psycopg connection ``conn`` (read now, on its thread)."""
    try:
        dsn, password, pid = conn.info.dsn, conn.info.password, conn.info.backend_pid
    except Exception:
        return None
    return lambda: _PostgresWatch(dsn, password, pid)


def _mysql_watch(conn: Any) -> Callable[[], _BlockedWatch] | None:
    """The same for a PyMySQL connection (MariaDB, MySQL)."""
    try:
        params = {"host": conn.host, "port": conn.port, "user": conn.user, "password": conn.password,
                  "unix_socket": conn.unix_socket}
        thread_id = int(conn.thread_id())
    except Exception:
        return None
    return lambda: _MysqlWatch(params, thread_id)


class _Hooks:
    """Installs the statement hooks for the duration of one interleaving (psycopg 3 and SQLAlchemy)."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self._undo: list[Callable[[], None]] = []

    def install(self) -> None:
        try:
            import psycopg
        except ImportError:
            psycopg = None  # type: ignore[assignment]
        if psycopg is not None:
            original = psycopg.Cursor.execute
            run = self.run

            def execute(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
                result = original(cursor, query, *args, **kwargs)
                if run.pausing:
                    run.after_statement(_statement_text(query, cursor), _postgres_watch(cursor.connection))
                return result

            psycopg.Cursor.execute = execute  # type: ignore[assignment,method-assign]

            def restore() -> None:
                psycopg.Cursor.execute = original  # type: ignore[method-assign]

            self._undo.append(restore)
        if "sqlalchemy" in sys.modules:  # an app that uses SQLAlchemy has imported it by now
            from sqlalchemy import event
            from sqlalchemy.engine import Engine

            def after_cursor_execute(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
                if psycopg is not None and isinstance(cursor, psycopg.Cursor):
                    return  # seen by the psycopg hook already
                if self.run.pausing:
                    dbapi = conn.connection.dbapi_connection
                    watch = _mysql_watch(dbapi) if type(dbapi).__module__.startswith("pymysql") else None
                    self.run.after_statement(statement, watch)

            event.listen(Engine, "after_cursor_execute", after_cursor_execute)
            self._undo.append(lambda: event.remove(Engine, "after_cursor_execute", after_cursor_execute))

    def remove(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


class _Side:
    """One of the two callables, on its own thread."""

    def __init__(self, name: str, fn: Callable[[], Any], index: int) -> None:
        self.name = name
        self.fn = fn
        self.index = index
        self.outcome: CallOutcome[Any] | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"testbed-interleave-{name}", daemon=True)

    def _run(self) -> None:
        try:
            self.outcome = CallOutcome(self.index, value=self.fn())
        except BaseException as exc:  # an outcome the test asserts on (a serialization failure, ...)
            self.outcome = CallOutcome(self.index, error=exc)
        finally:
            self.done.set()

    def start(self) -> None:
        self.thread.start()


def _open_watch(factory: Callable[[], _BlockedWatch] | None) -> _BlockedWatch:
    if factory is not None:
        try:
            return factory()
        except Exception:  # noqa: S110 - then only second's end (or the timeout) releases first
            pass
    return _BlockedWatch()


def _stuck(sides: list[_Side], what: str, timeout: float) -> ConcurrencyError:
    where = "\n".join(f"  {s.name} is at:\n{stacks.of_thread(s.thread)}" for s in sides if not s.done.is_set())
    return ConcurrencyError(f"interleave: {what} within {timeout:g} s.\n{where}")


def interleave(first: Callable[[], Any], second: Callable[[], Any], *, pause_first_after: Pattern,
               timeout: float = DEFAULT_TIMEOUT) -> Interleaved:
    """Run ``first`` up to its statement matching ``pause_first_after``, then ``second`` to the end, then the rest.

    ``pause_first_after``: a string (found case-insensitively in the SQL), a compiled regex, or a predicate
    on the statement text. Each callable opens its own connection/session (from the test's URL or the
    application's engine) and commits as the application does. Returns both outcomes (values or exceptions,
    nothing raised) and where ``first`` was held. If ``second`` waits for a lock ``first`` holds, ``first``
    is released at once (``second_waited_for_first``); a side still running after ``timeout`` seconds is a
    :class:`~testbed.concurrency.ConcurrencyError` showing where it is stuck.
    """
    __tracebackhide__ = True
    global _active
    run = _Run(_matcher(pause_first_after))
    with _active_lock:
        if _active is not None:
            raise ConcurrencyError("interleave: another interleaving is running in this process; run them one "
                                   "after the other.")
        _active = run
    hooks = _Hooks(run)
    hooks.install()
    one, two = _Side("first", first, 0), _Side("second", second, 1)
    waited = False
    try:
        deadline = time.monotonic() + timeout
        one.start()
        while not (run.paused.is_set() or one.done.is_set()):
            if time.monotonic() > deadline:
                raise _stuck([one], "first neither reached the pause point nor finished", timeout)
            run.paused.wait(POLL_INTERVAL)  # wakes at once on the pause; checks first's end every 5 ms
        run.pausing = False  # from here on no statement is held
        if not run.paused.is_set():  # first ran to the end without the statement: plain sequence
            two.start()
            if not two.done.wait(max(0.0, deadline - time.monotonic())):
                raise _stuck([two], "second did not finish", timeout)
        else:
            watch = _open_watch(run.watch)
            try:
                two.start()
                while not two.done.wait(POLL_INTERVAL):
                    if watch.blocked():
                        waited = True
                        break
                    if time.monotonic() > deadline:
                        raise _stuck([two], "second did not finish while first was paused (is it waiting for a "
                                     "pool slot first holds, or a lock testbed cannot see?)", timeout)
            finally:
                watch.close()
                run.release.set()
        for side in (one, two):
            if not side.done.wait(max(0.0, deadline - time.monotonic())):
                raise _stuck([one, two], f"{side.name} did not finish after first was released", timeout)
    except ConcurrencyError:
        # Let both sides end on their own now that first is released (a side waiting for first's pool slot
        # or lock does), so they close their connections before the test's cleanup looks for leaks.
        run.release.set()
        for side in (one, two):
            if side.thread.is_alive():
                side.done.wait(GRACE)
        raise
    finally:
        run.release.set()
        hooks.remove()
        with _active_lock:
            _active = None
    assert one.outcome is not None and two.outcome is not None
    return Interleaved(one.outcome, two.outcome, run.paused_after, waited)
