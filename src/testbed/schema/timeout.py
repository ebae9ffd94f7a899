"""A time limit on applying migrations, with an error that says what the migration was waiting for.

A migration that waits on a lock another session holds, or on ``pg_sleep``, would otherwise hang the
test session with no output. Migrations run on a worker thread; when the limit passes, the database is
asked what the migration's connections are doing (the statement, the wait event, the sessions that
block it), their statements are cancelled, and the error names all of that.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from testbed.errors import MigrationError

APPLICATION_NAME = "testbed-migrations"

# The migration's own backends (tagged by application_name) and, for each, who blocks it.
WAITING_SQL = """
SELECT a.pid, coalesce(a.state, ''), coalesce(a.wait_event_type || ': ' || a.wait_event, 'not waiting'),
       left(coalesce(a.query, ''), 500),
       coalesce((SELECT array_agg(format('pid %%s %%s (%%s): %%s', b.pid, coalesce(nullif(b.application_name, ''),
                                                   '(no application_name)'), b.state, left(b.query, 200)))
                 FROM pg_stat_activity b WHERE b.pid = ANY(pg_blocking_pids(a.pid))), '{}')
FROM pg_stat_activity a
WHERE a.application_name = %s AND a.pid <> pg_backend_pid() AND a.state IS DISTINCT FROM 'idle'
"""


@contextmanager
def tagged_connections() -> Iterator[None]:
    """Connections opened meanwhile without an explicit application_name (Alembic's, a callable's) carry
    the migrations' tag: libpq reads PGAPPNAME."""
    previous = os.environ.get("PGAPPNAME")
    os.environ["PGAPPNAME"] = APPLICATION_NAME
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("PGAPPNAME", None)
        else:
            os.environ["PGAPPNAME"] = previous


def inspect_and_cancel(conninfo: dict[str, Any]) -> tuple[list[tuple[Any, ...]], str]:
    """What the migration's backends on the database of ``conninfo`` wait for; their statements cancelled."""
    try:
        with psycopg.connect(**conninfo, autocommit=True, connect_timeout=5, application_name="testbed") as conn:
            rows = conn.execute(WAITING_SQL, (APPLICATION_NAME,)).fetchall()
            for row in rows:
                conn.execute("SELECT pg_cancel_backend(%s)", (row[0],))
    except psycopg.Error as exc:
        return [], f"(could not ask the server what it waits for: {exc})"
    if not rows:
        return [], "No statement of the migration is running on the database: it waits outside it (in Python)."
    lines = []
    for pid, state, waiting, query, blockers in rows:
        lines.append(f"  backend pid {pid} ({state}), waiting for {waiting}")
        lines.append(f"    statement: {' '.join(query.split())[:300]}")
        lines.extend(f"    blocked by {b}" for b in blockers)
    return list(rows), "\n".join(lines)


def run_with_timeout(apply: Callable[[], None], *, timeout: float, conninfo: dict[str, Any], what: str,
                     engine: str = "postgres") -> None:
    """Run ``apply``; after ``timeout`` seconds cancel it and raise a MigrationError saying what it waited on."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            with tagged_connections():
                apply()
        except BaseException as exc:  # handed to the caller's thread
            outcome.append(exc)
        else:
            outcome.append(None)

    worker = threading.Thread(target=target, name="testbed-migrations", daemon=True)
    worker.start()
    worker.join(timeout)
    if not worker.is_alive():
        if outcome and outcome[0] is not None:
            raise outcome[0]
        return
    _rows, waiting = inspect_and_cancel(conninfo)
    worker.join(15)  # a cancelled statement ends at once (Python code that sleeps does not)
    then = ""
    if outcome and isinstance(outcome[0], MigrationError):
        then = "\nThe statement it was on: " + str(outcome[0].args[0])
    raise MigrationError(
        f"{what} did not finish within {timeout:g} s (migration_timeout) and was cancelled.\n"
        f"What it was doing:\n{waiting}{then}\n"
        "If a session holds a lock the migration needs, end that session; if the migration is really this "
        f"slow, raise migration_timeout in [tool.testbed.{engine}] (or TESTBED_{engine.upper()}_MIGRATION_TIMEOUT).",
        boundary=f"{engine} migrations",
    )
