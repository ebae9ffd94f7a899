"""Query budgets: the statements a block of code ran on the test's databases, counted by any connection.

The statements come from the server's own log (``testbed.isolation.statement_log``, published through
``testbed.observe``), so the application's pools, threads and worker processes count, not only the
connection a test holds; that also makes it work the same under pytest-xdist.

    with testbed.assert_max_queries(3):
        client.get("/orders")           # fails naming every statement when it runs more than 3

Where SQLAlchemy sends a statement, the line of the application that asked for it is remembered by shape
(the server cannot know it): the N+1 detector names it.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from testbed import observe
from testbed.errors import TestbedError
from testbed.report.shapes import Repeat, is_query, repeats, shape


class QueryBudgetError(TestbedError, AssertionError):
    """A test (or a block of it) ran more statements than its budget, or one shape too often (N+1)."""

    boundary = "sql"


@dataclass(frozen=True)
class Query:
    """One statement the server ran for the test."""

    sql: str
    shape: str
    at: float
    duration_ms: float | None
    application_name: str
    database: str
    error: str
    params: str
    shown: str = ""  # the statement with its logged parameter values in place of $1, $2, ...

    @classmethod
    def from_event(cls, event: observe.BoundaryEvent) -> Query:
        d = event.data
        sql = str(d.get("sql", ""))
        return cls(sql, shape(sql), event.at, d.get("duration_ms"), str(d.get("application_name") or ""),
                   str(d.get("database") or ""), str(d.get("error") or ""), str(d.get("params") or ""),
                   event.summary.split("  -> ERROR", 1)[0])

    def __str__(self) -> str:
        took = f" ({self.duration_ms:.2f} ms)" if self.duration_ms is not None else ""
        err = f"  -> ERROR {self.error}" if self.error else ""
        who = f" [{self.application_name}]" if self.application_name else ""
        return f"{' '.join((self.shown or self.sql).split())[:300]}{took}{who}{err}"


def is_statement(event: observe.BoundaryEvent) -> bool:
    return event.boundary == "sql" and event.kind == "statement"


class QueryLog:
    """The statements seen on the test's databases since this log started (``queries`` fixture).

    Reading it waits until the server's log has caught up (a fraction of a millisecond).
    """

    def __init__(self) -> None:
        import time

        self._events: list[observe.BoundaryEvent] = []
        self._since = time.time()
        self._lock = threading.Lock()
        self._unsubscribe = observe.subscribe(self._on_event)
        install_call_sites()

    def _on_event(self, event: observe.BoundaryEvent) -> None:
        if is_statement(event) and event.at >= self._since - 0.002:  # a late read can bring older statements
            with self._lock:
                self._events.append(event)

    def close(self) -> None:
        self._unsubscribe()

    def reset(self) -> None:
        """Forget the statements so far (e.g. those of the test's setup)."""
        import time

        observe.flush()
        with self._lock:
            self._events.clear()
            self._since = time.time()

    @property
    def all(self) -> list[Query]:
        """Every statement, transaction control included, in the order the server logged them."""
        observe.flush()
        with self._lock:
            events = sorted(self._events, key=lambda e: e.at)
        return [Query.from_event(e) for e in events]

    @property
    def statements(self) -> list[Query]:
        """The statements that count: without BEGIN/COMMIT/ROLLBACK/SAVEPOINT and SET/SHOW."""
        return [q for q in self.all if is_query(q.shape)]

    def __len__(self) -> int:
        return len(self.statements)

    def __iter__(self) -> Iterator[Query]:
        return iter(self.statements)

    def __getitem__(self, index: int) -> Query:
        return self.statements[index]

    @property
    def shapes(self) -> Counter[str]:
        """How often each statement shape ran."""
        return Counter(q.shape for q in self.statements)

    def repeated(self, more_than: int) -> list[Repeat]:
        """Shapes that ran more than ``more_than`` times (with their call site when known)."""
        return repeats((q.shape for q in self.statements), more_than, call_sites())

    def __repr__(self) -> str:
        return f"<testbed QueryLog: {len(self)} statements>"


def budget_message(queries: list[Query], limit: int, what: str = "the block") -> str:
    lines = [f"{len(queries)} statements ran on the test's databases in {what}; at most {limit} allowed:"]
    for i, q in enumerate(queries[:50], 1):
        lines.append(f"  {i:>3}. {q}")
    if len(queries) > 50:
        lines.append(f"  ... and {len(queries) - 50} more")
    rep = repeats((q.shape for q in queries), 1, call_sites())
    if rep:
        lines.append("Repeated statement shapes:")
        lines += ["  " + r.describe() for r in rep[:5]]
    return "\n".join(lines)


def n_plus_one_message(found: list[Repeat], threshold: int) -> str:
    lines = [f"N+1 queries: the same statement shape ran more than {threshold} times (n_plus_one = {threshold}):"]
    lines += ["  " + r.describe() for r in found[:5]]
    lines.append("Load them in one statement (a join, IN (...), selectinload/joinedload), or raise the threshold "
                 "with @pytest.mark.testbed(n_plus_one=N).")
    return "\n".join(lines)


@contextmanager
def assert_max_queries(limit: int) -> Iterator[QueryLog]:
    """Fail when the block runs more than ``limit`` statements on the test's databases (any connection).

    Transaction control (BEGIN/COMMIT/ROLLBACK/SAVEPOINT) and SET/SHOW do not count. Needs testbed's
    statement capture (on by default; see ``[tool.testbed] capture``).
    """
    __tracebackhide__ = True
    log = QueryLog()
    log.reset()  # what ran before the block belongs to no budget
    try:
        yield log
        found = log.statements
    finally:
        log.close()
    if len(found) > limit:
        raise QueryBudgetError(budget_message(found, limit))


# -- call sites (SQLAlchemy) --------------------------------------------------------------------------

_call_sites: dict[str, str] = {}
_installed = False
_LIBRARIES = ("sqlalchemy", "testbed", "psycopg", "pymysql", "asyncpg", "_pytest", "pluggy", "contextlib",
              "threading", "concurrent", "asyncio", "greenlet", "factory", "anyio", "starlette", "fastapi")


def call_sites() -> dict[str, str]:
    """Statement shape -> the first application line that sent it through SQLAlchemy (this test)."""
    return dict(_call_sites)


def forget_call_sites() -> None:
    _call_sites.clear()


def install_call_sites() -> None:
    """Remember, per statement shape, the line of code that asked SQLAlchemy for it (once SQLAlchemy is
    loaded; never imports it)."""
    global _installed
    if _installed or "sqlalchemy" not in sys.modules:
        return
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    event.listen(Engine, "before_cursor_execute", _before_execute)
    _installed = True


def _before_execute(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
    key = shape(statement)
    if key in _call_sites or len(_call_sites) > 500:
        return
    frame = sys._getframe(1)
    for _ in range(60):
        if frame is None:
            return
        module = str(frame.f_globals.get("__name__", ""))
        if not module.startswith(_LIBRARIES):
            code = frame.f_code
            _call_sites[key] = f"{code.co_filename}:{frame.f_lineno} in {code.co_name}"
            return
        frame = frame.f_back  # type: ignore[assignment]
