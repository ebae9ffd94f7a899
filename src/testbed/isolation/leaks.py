"""Leak checks: connections a test opened and left open, rows it left behind.

A leaked connection is the bug that exhausts pools in production; rows left behind make the next test
depend on this one. Both are reported as the test's own failure, naming what leaked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from testbed.errors import LeakError

# Client backends on a database other than the asking one and those excluded, opened since the test started.
OPEN_CONNECTIONS_SQL = """
SELECT pid, coalesce(application_name, ''), coalesce(state, ''), coalesce(left(query, 300), ''),
       coalesce(client_addr::text, 'unix socket')
FROM pg_stat_activity
WHERE datname = coalesce(%(dbname)s, current_database()) AND pid <> pg_backend_pid()
  AND pid <> ALL(%(exclude)s::int[]) AND backend_type = 'client backend' AND backend_start >= %(since)s
ORDER BY backend_start
"""


@dataclass(frozen=True)
class OpenConnection:
    pid: int
    application_name: str
    state: str
    last_query: str
    client: str

    def describe(self) -> str:
        app = self.application_name or "(no application_name)"
        return f"backend pid {self.pid} {app} from {self.client}, {self.state}, last query: {self.last_query!r}"


# Other sessions on the current database that hold locks on its tables inside an open transaction: the
# truncate cleanup would wait for them.
LOCK_HOLDERS_SQL = """/*testbed*/
SELECT DISTINCT a.pid, coalesce(a.application_name, ''), coalesce(a.state, ''), coalesce(left(a.query, 300), ''),
       coalesce(a.client_addr::text, 'unix socket')
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND l.granted
  AND l.relation IS NOT NULL AND a.pid <> pg_backend_pid() AND a.xact_start IS NOT NULL
  AND a.pid <> ALL(%(exclude)s::int[])
"""


@dataclass
class LeakReport:
    """What one test left behind."""

    connections: list[OpenConnection] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows found
    rows_context: str = ""
    blockers: list[OpenConnection] = field(default_factory=list)  # sessions whose locks blocked the cleanup

    def __bool__(self) -> bool:
        return bool(self.connections or self.rows or self.blockers)

    def error(self, test_name: str) -> LeakError:
        parts = []
        if self.blockers:
            lines = "\n".join("  - " + c.describe() for c in self.blockers)
            parts.append(
                f"{len(self.blockers)} connection(s) still in a transaction held locks on this test's tables and "
                f"blocked the cleanup after {test_name}; testbed terminated them so the next tests are not "
                f"blocked:\n{lines}\nEnd the transaction (commit or rollback) and return the connection to its "
                "pool before the test ends, e.g. in the fixture that hands it out."
            )
        if self.connections:
            lines = "\n".join("  - " + c.describe() for c in self.connections)
            parts.append(
                f"{len(self.connections)} database connection(s) opened by {test_name} are still open:\n{lines}\n"
                "Close them (engine.dispose(), pool.close(), conn.close()) in the test or its fixture; "
                "testbed terminated them. If a session-scoped pool owns them on purpose, mark the test "
                "@pytest.mark.testbed(leak_check=False, reason='...')."
            )
        if self.rows:
            lines = "\n".join(f"  - {t}: {n} row(s)" for t, n in sorted(self.rows.items()))
            parts.append(f"{test_name} left rows behind {self.rows_context}:\n{lines}")
        return LeakError("\n".join(parts), boundary="postgres leak check")


def open_connections(
    conn: psycopg.Connection[Any], since: datetime, *, dbname: str | None = None, exclude: list[int] | None = None
) -> list[OpenConnection]:
    """Connections to ``dbname`` (default: the one ``conn`` is on) opened since ``since``."""
    params = {"dbname": dbname, "exclude": exclude or [], "since": since}
    return [OpenConnection(*row) for row in conn.execute(OPEN_CONNECTIONS_SQL, params).fetchall()]


def lock_holders(conn: psycopg.Connection[Any], exclude: list[int]) -> list[OpenConnection]:
    """Other sessions on ``conn``'s database holding table locks inside an open transaction."""
    return [OpenConnection(*row) for row in conn.execute(LOCK_HOLDERS_SQL, {"exclude": exclude}).fetchall()]


def terminate(conn: psycopg.Connection[Any], pids: list[int]) -> None:
    if pids:
        conn.execute("SELECT pg_terminate_backend(p) FROM unnest(%s::int[]) p", (pids,))


def row_counts(conn: psycopg.Connection[Any], tables: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in tables:
        row = conn.execute(f"/*testbed*/ SELECT count(*) FROM {t}").fetchone()  # names come from regclass::text
        counts[t] = int(row[0]) if row else 0
    return counts


def still_open(
    admin: psycopg.Connection[Any], candidates: list[OpenConnection], grace: float = 0.5
) -> list[OpenConnection]:
    """Those of ``candidates`` whose backend is still there after a short grace period.

    A client that has just closed its connection leaves its backend in pg_stat_activity for a moment
    (the backend exits asynchronously); that is not a leak. ``admin`` must be in autocommit mode.
    """
    import time

    deadline = time.monotonic() + grace
    remaining = candidates
    while remaining:
        admin.execute("SELECT pg_stat_clear_snapshot()")
        rows = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", ([c.pid for c in remaining],)
        ).fetchall()
        alive = {r[0] for r in rows}
        remaining = [c for c in remaining if c.pid in alive]
        if not remaining or time.monotonic() > deadline:
            break
        time.sleep(0.005)
    return remaining
