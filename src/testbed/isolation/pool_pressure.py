"""Pool pressure: which connections a pool held, since when, doing what, and who checked them out.

``QueuePool limit of size 5 overflow 10 reached, connection timed out`` says the pool was empty, not why.
The :class:`PoolWatcher` follows every SQLAlchemy pool of the process through its events (checkout,
checkin, close, invalidate) and every statement through the engine's, remembering for each checked-out
connection when and on which thread it was taken, the stack that took it (captured cheaply, formatted only
when shown) and its last statement. At the moment a pool times out it takes a snapshot, adds PostgreSQL's
own view of the database (``pg_stat_activity``: state, how long idle or in a transaction, the last query,
what it waits for) and attaches it to the error. The server's view works for any pool (psycopg_pool, an
application in another process): :func:`server_view`.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from testbed import observe, stacks

# Client sessions on the database the asking connection is on, oldest first.
SERVER_VIEW_SQL = """
SELECT pid, coalesce(application_name, ''), coalesce(client_addr::text, 'unix socket'), coalesce(state, ''),
       extract(epoch FROM now() - state_change)::float8, extract(epoch FROM now() - xact_start)::float8,
       coalesce(wait_event_type || ': ' || wait_event, ''), coalesce(left(query, 300), '')
FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
ORDER BY backend_start
"""

_TRANSACTION_STATES = {"IDLE": "idle", "ACTIVE": "running a statement", "INTRANS": "idle in transaction",
                       "INERROR": "idle in a failed transaction", "UNKNOWN": "connection broken"}


@dataclass(frozen=True)
class HeldConnection:
    """A connection checked out of a SQLAlchemy pool and not returned (yet)."""

    pool: str  # e.g. "QueuePool postgresql://app@127.0.0.1:5432/orders"
    backend_pid: int  # 0 when the driver does not say
    held_for: float  # seconds since checkout
    thread: str  # the thread that checked it out
    state: str  # the driver's view: "idle in transaction", "idle", ...
    last_statement: str
    last_statement_ago: float | None
    stack: stacks.Stack = field(repr=False, compare=False, default_factory=stacks.Stack)

    def describe(self, indent: str = "  ") -> str:
        pid = f"backend pid {self.backend_pid}" if self.backend_pid else "a connection"
        last = (f", last statement {self.last_statement_ago:.2f} s ago: {self.last_statement!r}"
                if self.last_statement else ", no statement through SQLAlchemy yet")
        lines = [f"{indent}- {pid}, checked out {self.held_for:.2f} s ago by thread {self.thread}, {self.state}{last}"]
        frames = stacks.user_frames(self.stack)
        if frames:
            lines.append(f"{indent}  checked out at:")
            lines.append(stacks.format_frames(frames, indent + "    "))
        return "\n".join(lines)


@dataclass(frozen=True)
class ServerSession:
    """One row of pg_stat_activity for the database."""

    pid: int
    application_name: str
    client: str
    state: str
    state_for: float | None
    transaction_for: float | None
    waiting_for: str
    query: str

    def describe(self, held: dict[int, HeldConnection], indent: str = "  ") -> str:
        app = f"{self.application_name!r}" if self.application_name else "(no application_name)"
        state = self.state or "?"
        if self.state_for is not None:
            state += f" for {self.state_for:.2f} s"
        xact = f", transaction open {self.transaction_for:.2f} s" if self.transaction_for is not None else ""
        wait = f", waiting for {self.waiting_for}" if self.waiting_for and self.state == "active" else ""
        mine = f" [held by {held[self.pid].pool}]" if self.pid in held else ""
        return (f"{indent}- pid {self.pid} {app} from {self.client}{mine}: {state}{xact}{wait}, "
                f"last query: {self.query!r}")


@dataclass(frozen=True)
class PoolState:
    """One pool at the moment of the snapshot."""

    pool: str
    status: str  # SQLAlchemy's pool.status()
    held: tuple[HeldConnection, ...]


@dataclass(frozen=True)
class PoolPressureReport:
    """What the pools held and what the server saw, at one moment."""

    reason: str
    pools: tuple[PoolState, ...] = ()
    server: tuple[ServerSession, ...] | None = None
    database: str = ""
    server_error: str = ""
    at: float = field(default_factory=time.time)

    def held(self) -> list[HeldConnection]:
        return [h for p in self.pools for h in p.held]

    def text(self) -> str:
        lines = [f"[pool pressure] {self.reason}"]
        for p in self.pools:
            lines.append(f"SQLAlchemy {p.pool} ({p.status}): {len(p.held)} checked out")
            lines += [h.describe() for h in sorted(p.held, key=lambda h: -h.held_for)]
        if not self.pools:
            lines.append("No SQLAlchemy pool of this process held a connection.")
        by_pid = {h.backend_pid: h for h in self.held() if h.backend_pid}
        if self.server is not None:
            lines.append(f"PostgreSQL's view of database {self.database!r} (pg_stat_activity, "
                         f"{len(self.server)} other client session(s)):")
            lines += [s.describe(by_pid) for s in self.server]
        elif self.server_error:
            lines.append(f"PostgreSQL's view: not available ({self.server_error})")
        if self.held():
            lines.append("A connection checked out long ago and idle (in transaction) is one the code never gave back: "
                         "close it where it was checked out (`with engine.connect() as conn:`, `with Session(engine) "
                         "as s:`), or raise the pool size if the work really needs that many at once.")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()


def server_view(conninfo: str, password: str | None = None) -> tuple[str, tuple[ServerSession, ...]]:
    """PostgreSQL's view of the database ``conninfo`` points at: (its name, every other client session)."""
    import psycopg

    with psycopg.connect(conninfo, password=password, autocommit=True, connect_timeout=5,
                         application_name="testbed-pool-pressure") as conn:
        rows = conn.execute(SERVER_VIEW_SQL).fetchall()
        return conn.info.dbname, tuple(ServerSession(*row) for row in rows)


def _describe_dbapi(dbapi: Any) -> str:
    info = getattr(dbapi, "info", None)
    if info is not None and hasattr(info, "dbname"):  # psycopg 3
        return f"postgresql://{info.user}@{info.host}:{info.port}/{info.dbname}"
    host = getattr(dbapi, "host", None)
    if host is not None:  # PyMySQL
        db = getattr(dbapi, "db", b"") or b""
        return f"mysql://{getattr(dbapi, 'user', b'')!s}@{host}:{getattr(dbapi, 'port', '')}/" + (
            db.decode() if isinstance(db, bytes) else str(db))
    return type(dbapi).__module__


def _pid(dbapi: Any) -> int:
    try:
        return int(dbapi.info.backend_pid)  # psycopg 3
    except Exception:
        return 0


def _state(dbapi: Any) -> str:
    try:
        if dbapi.closed:
            return "closed"
        return _TRANSACTION_STATES.get(dbapi.info.transaction_status.name, "?")
    except Exception:
        return "state unknown to testbed for this driver"


def _conninfo(dbapi: Any) -> tuple[str, str | None] | None:
    try:
        return dbapi.info.dsn, dbapi.info.password
    except Exception:
        return None


def _no_pool() -> None:
    return None


@dataclass
class _Checkout:
    pool: Callable[[], Any]
    dbapi: Any
    since: float
    thread: str
    stack: stacks.Stack


class PoolWatcher:
    """Follows every SQLAlchemy pool of the process while started (``with PoolWatcher() as pools:``).

    ``held()`` lists what is checked out now; ``snapshot()`` adds the server's view; ``timeouts`` holds the
    snapshot taken at each pool timeout, which is also attached to the ``TimeoutError`` as a note when
    ``annotate`` is true (the pytest plugin reports it as a section instead).
    """

    def __init__(self, *, annotate: bool = True, server: bool = True) -> None:
        self.annotate = annotate
        self.server = server
        self.timeouts: list[PoolPressureReport] = []
        self._held: dict[int, _Checkout] = {}
        self._last: dict[int, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._undo: list[Any] = []

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        return bool(self._undo)

    def start(self) -> PoolWatcher:
        if self.started:
            return self
        from sqlalchemy import event
        from sqlalchemy import exc as sa_exc
        from sqlalchemy.engine import Engine
        from sqlalchemy.pool import Pool, QueuePool

        listeners: list[tuple[Any, str, Callable[..., Any]]] = [
            (Pool, "checkout", self._on_checkout), (Pool, "checkin", self._on_checkin), (Pool, "close", self._on_gone),
            (Pool, "detach", self._on_gone), (Pool, "invalidate", self._on_gone),
            (Engine, "before_cursor_execute", self._on_statement)]
        for target, name, fn in listeners:
            event.listen(target, name, fn)
            self._undo.append(lambda t=target, n=name, f=fn: event.remove(t, n, f))
        original = QueuePool._do_get
        watcher = self

        def _do_get(pool: Any) -> Any:
            try:
                return original(pool)
            except sa_exc.TimeoutError as exc:
                report = watcher._timed_out(pool, exc)
                if watcher.annotate:
                    exc.add_note(report.text())
                raise

        QueuePool._do_get = _do_get  # type: ignore[method-assign,assignment]

        def restore() -> None:
            QueuePool._do_get = original  # type: ignore[method-assign]

        self._undo.append(restore)
        return self

    def stop(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()
        with self._lock:
            self._held.clear()
            self._last.clear()

    def __enter__(self) -> PoolWatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- pool events (any thread) ------------------------------------------------------------------
    def _on_checkout(self, dbapi: Any, record: Any, proxy: Any) -> None:
        pool = getattr(proxy, "_pool", None)  # the fairy knows its pool; the event does not pass it
        entry = _Checkout(weakref.ref(pool) if pool is not None else _no_pool,
                          dbapi, time.monotonic(), threading.current_thread().name, stacks.capture(skip=1))
        with self._lock:
            self._held[id(dbapi)] = entry

    def _on_checkin(self, dbapi: Any, record: Any) -> None:
        if dbapi is None:  # invalidated on the way back
            return
        with self._lock:
            self._held.pop(id(dbapi), None)

    def _on_gone(self, dbapi: Any, record: Any, *_: Any) -> None:
        with self._lock:
            self._held.pop(id(dbapi), None)
            self._last.pop(id(dbapi), None)

    def _on_statement(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        try:
            dbapi = conn.connection.dbapi_connection
        except Exception:
            return
        self._last[id(dbapi)] = (statement, time.monotonic())

    def forget(self, pids: set[int]) -> None:
        """Stop listing connections whose server session is gone (testbed's leak check terminated them)."""
        with self._lock:
            for key in [k for k, c in self._held.items() if _pid(c.dbapi) in pids]:
                del self._held[key]
                self._last.pop(key, None)

    # -- reading -----------------------------------------------------------------------------------
    def _entries(self) -> list[tuple[int, _Checkout]]:
        with self._lock:
            return list(self._held.items())

    def _current(self, pool: Any = None) -> list[tuple[Any, HeldConnection, _Checkout]]:
        """(pool, what it holds, the raw entry) for every checked-out connection, longest held first."""
        now = time.monotonic()
        out = []
        for key, c in self._entries():
            p = c.pool()
            if pool is not None and p is not pool:
                continue
            statement, at = self._last.get(key, ("", None))
            held = HeldConnection(
                pool=f"{type(p).__name__ if p is not None else 'pool'} {_describe_dbapi(c.dbapi)}",
                backend_pid=_pid(c.dbapi), held_for=now - c.since, thread=c.thread, state=_state(c.dbapi),
                last_statement=" ".join(statement.split())[:300], last_statement_ago=None if at is None else now - at,
                stack=c.stack)
            out.append((p, held, c))
        return sorted(out, key=lambda t: -t[1].held_for)

    def held(self, pool: Any = None) -> list[HeldConnection]:
        """Connections checked out now (of ``pool`` only, when given), longest held first."""
        return [h for _p, h, _c in self._current(pool)]

    def snapshot(self, reason: str = "on demand", *, url: str | None = None, pool: Any = None) -> PoolPressureReport:
        """Every pool's checked-out connections, plus PostgreSQL's view of ``url``'s database (default: the
        database the held connections are on)."""
        current = self._current(pool)
        grouped: dict[int, tuple[Any, list[HeldConnection]]] = {}
        for p, held, _c in current:
            grouped.setdefault(id(p), (p, []))[1].append(held)
        pools = tuple(PoolState(items[0].pool, p.status() if hasattr(p, "status") else "", tuple(items))
                      for p, items in grouped.values())
        if not self.server:
            return PoolPressureReport(reason, pools)
        conninfo: tuple[str, str | None] | None = (url, None) if url else None
        for _p, _h, c in current:
            if conninfo is not None:
                break
            conninfo = _conninfo(c.dbapi)
        if conninfo is None:
            return PoolPressureReport(reason, pools, server_error="no PostgreSQL connection to ask through")
        try:
            database, sessions = server_view(*conninfo)
        except Exception as exc:  # the server may be out of connections itself: say so, keep the pool view
            return PoolPressureReport(reason, pools, server_error=f"{type(exc).__name__}: {exc}".strip())
        return PoolPressureReport(reason, pools, sessions, database)

    def _timed_out(self, pool: Any, exc: BaseException) -> PoolPressureReport:
        reason = f"{exc.args[0] if exc.args else exc} (in thread {threading.current_thread().name})"
        report = self.snapshot(reason.split(" (Background on this error")[0])
        self.timeouts.append(report)
        observe.publish("sql", "pool timeout", report.reason, report=report.text())
        return report


# What running out of connections looks like, from any pool or from the server itself.
_EXHAUSTION_TYPES = {"PoolTimeout", "TooManyConnectionsError"}  # psycopg_pool, asyncpg
_EXHAUSTION_TEXT = ("QueuePool limit of size", "too many clients already", "remaining connection slots are reserved",
                    "Too many connections", "couldn't get a connection after")


def pool_exhaustion(error: BaseException | None) -> str | None:
    """The message of the pool (or server connection-limit) error in ``error``'s chain, if there is one."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen and len(seen) < 20:
        seen.add(id(error))
        text = str(error.args[0]) if error.args else str(error)
        kind = type(error)
        sqlalchemy_timeout = kind.__name__ == "TimeoutError" and kind.__module__.startswith("sqlalchemy")
        if sqlalchemy_timeout or kind.__name__ in _EXHAUSTION_TYPES or any(t in text for t in _EXHAUSTION_TEXT):
            return text.split(" (Background on this error")[0]
        error = error.__cause__ or error.__context__
    return None


@contextmanager
def watching(*, annotate: bool = True) -> Iterator[PoolWatcher]:
    """Watch every SQLAlchemy pool while the block runs: ``with watching() as pools: ...; pools.snapshot()``."""
    watcher = PoolWatcher(annotate=annotate).start()
    try:
        yield watcher
    finally:
        watcher.stop()
