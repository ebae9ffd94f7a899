"""Every statement run on this worker's MariaDB/MySQL databases, by any connection, from the server's slow
query log (``long_query_time = 0``: every statement is "slow").

The log names each statement's connection (thread id) and default database (``Schema``) and carries its
duration, rows sent and rows examined (and, on MariaDB, rows affected). It stamps statements with whole
seconds only, so events are timed when read (in the order the server logged them). A statement that failed
is not logged by the server: its error is the driver's exception in the test's own traceback.

Like the PostgreSQL capture (``testbed.isolation.statement_log``), a flush first runs a marker statement and
reads until the marker is in the log.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed import observe
from testbed.runners.log_follow import LogFollower

MARKER = "testbed-mark"
MAX_SQL = 4000
_counter = itertools.count(1)
_THREAD = re.compile(r"# Thread_id: (\d+)\s+Schema: (\S*)")
_TIMES = re.compile(r"# Query_time: ([0-9.]+)\s+Lock_time: [0-9.]+\s+Rows_sent: (\d+)\s+Rows_examined: (\d+)")
_AFFECTED = re.compile(r"# Rows_affected: (\d+)")
_SKIP = ("SET timestamp=", "use ")


@dataclass
class SlowLogEntry:
    thread_id: int = 0
    schema: str = ""
    duration_ms: float | None = None
    rows_sent: int | None = None
    rows_examined: int | None = None
    rows_affected: int | None = None
    lines: list[str] = field(default_factory=list)

    @property
    def sql(self) -> str:
        return "\n".join(self.lines).strip().rstrip(";").strip()


def parse_entries(lines: Iterable[str]) -> list[SlowLogEntry]:
    """The entries of slow-log ``lines`` (the last one may still be incomplete)."""
    entries: list[SlowLogEntry] = []
    current: SlowLogEntry | None = None
    for line in lines:
        if line.startswith("# User@Host:"):
            current = SlowLogEntry()
            entries.append(current)
            continue
        if current is None:
            continue  # the file's banner, or the tail of an entry read before
        if line.startswith("# "):
            m = _THREAD.match(line)
            if m:
                current.thread_id, current.schema = int(m.group(1)), m.group(2)
            m = _TIMES.match(line)
            if m:
                current.duration_ms = float(m.group(1)) * 1000
                current.rows_sent, current.rows_examined = int(m.group(2)), int(m.group(3))
            m = _AFFECTED.match(line)
            if m:
                current.rows_affected = int(m.group(1))
            continue
        if not current.lines and line.startswith(_SKIP):
            continue
        current.lines.append(line)
    return entries


class MysqlStatementCapture:
    """Publishes the statements of a set of databases from one server's slow query log."""

    def __init__(self, path: Path, marker: Callable[[str], None], own_threads: Callable[[], Iterable[int]],
                 databases: set[str], engine: str) -> None:
        self.path = path
        self.databases = databases
        self._marker = marker
        self._own_threads = own_threads
        self._engine = engine
        self._follower = LogFollower(path, from_end=True)
        self._pending: list[str] = []  # lines of an entry whose end has not been read yet
        self._remove = observe.add_source(self.flush)

    def close(self) -> None:
        self._remove()

    def flush(self, wait: bool = True, timeout: float = 2.0) -> None:
        if not wait:
            self._publish(None)
            return
        token = f"{MARKER} {os.getpid()}-{next(_counter)}"
        try:
            self._marker(token)
        except Exception:
            self._publish(None)
            return
        deadline = time.monotonic() + timeout
        polls = 0
        while not self._publish(token) and time.monotonic() < deadline:
            polls += 1
            time.sleep(0.0001 if polls < 50 else 0.002)
        # The server writes an entry just after answering its client, so another connection's last statement
        # can land right after the marker: one more look a moment later.
        time.sleep(0.002)
        self._publish(None)

    def _publish(self, token: str | None) -> bool:
        new = [raw.decode("utf-8", "replace") for raw in self._follower.read_lines()]
        if not new:
            return False
        lines = self._pending + new
        entries = parse_entries(lines)
        found = token is not None and any(token in line for line in new)
        # The last entry may continue in the next read, unless its statement is complete (ends with ";").
        last_start = max((i for i, line in enumerate(lines) if line.startswith("# User@Host:")), default=None)
        if last_start is None or (entries and entries[-1].lines and entries[-1].lines[-1].rstrip().endswith(";")):
            self._pending = []
        else:
            self._pending = lines[last_start:]
            entries = entries[:-1]
        own = set(self._own_threads())
        for entry in entries:
            sql = entry.sql
            if MARKER in sql or not sql:
                continue
            if not (entry.schema in self.databases or entry.schema.startswith(tuple(d + "_" for d in self.databases))):
                continue
            if sql.startswith("/*testbed*/"):
                continue
            word = sql.upper()
            if word in ("BEGIN", "START TRANSACTION", "SET AUTOCOMMIT=0", "SET AUTOCOMMIT=1"):
                continue
            mine = entry.thread_id in own
            if mine and word.startswith(("COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")):
                continue  # testbed's transaction around the test (the fixture's commits are savepoints)
            rows = f", {entry.rows_sent} rows sent" if entry.rows_sent else ""
            if entry.rows_affected:
                rows += f", {entry.rows_affected} rows affected"
            observe.publish(
                "sql", "statement", " ".join(sql.split())[:300], engine=self._engine, sql=sql[:MAX_SQL], params="",
                duration_ms=entry.duration_ms, database=entry.schema, application_name="", pid=entry.thread_id,
                error="", detail=rows.lstrip(", "), rows_sent=entry.rows_sent, rows_examined=entry.rows_examined,
                rows_affected=entry.rows_affected, connection="mysql_db fixture" if mine else "",
            )
        return found


def enable(admin: Any) -> None:
    """Turn the slow query log on for every statement: new sessions, and ``admin``'s own."""
    with admin.cursor() as cur:
        cur.execute("SET GLOBAL long_query_time = 0")
        cur.execute("SET GLOBAL slow_query_log = ON")
        cur.execute("SET SESSION long_query_time = 0")
