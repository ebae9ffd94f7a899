"""Every statement run on this worker's PostgreSQL databases, by any connection, from the server's own log.

A driver hook sees only the connections of the process it is installed in; the server sees them all:
the test's ``db``, the application's pools, a worker process, a psql in a subprocess. testbed's servers
write a structured log (``testbed.engines.postgres_log``); the worker's databases ask the server to log
every statement there (``log_min_duration_statement = 0`` on those databases only). This module reads the
log from where it stopped and publishes each statement to ``testbed.observe`` (boundary "sql"), with the
time the server logged it, its duration, the connection's application_name and pid, and the error when it
failed; errors and warnings of the server that are not statements are published as "server log" lines.

Reading is exact, not a guess: :meth:`StatementCapture.flush` first makes the server log a marker through
another connection and reads until the marker shows up. A statement whose result a client had received
before the marker was sent was logged before it.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from testbed import observe
from testbed.engines.postgres_log import LogRecord, StatementRecord, parse_record, statement_of, with_params
from testbed.runners.log_follow import LogFollower

INTERNAL = "/*testbed*/ "  # testbed's own statements start with this and are left out of transcripts
MARKER = "testbed-mark"
# Per database: every statement logged with its duration; parameters of extended-protocol statements capped.
DATABASE_SETTINGS = ("log_min_duration_statement = 0", "log_parameter_max_length = 256",
                     "log_parameter_max_length_on_error = 256")
MAX_SQL = 4000  # characters of one statement kept in an event
_TRANSACTION_CONTROL = frozenset({"BEGIN", "COMMIT", "ROLLBACK", "START TRANSACTION", "END"})
_SERVER_LOG_LEVELS = frozenset({"WARNING", "ERROR", "FATAL", "PANIC"})
_counter = itertools.count(1)


def enable_statement_log(admin: Any, dbname: str) -> None:
    """Make the server log every statement run on ``dbname`` (new sessions; ``admin`` in autocommit)."""
    for setting in DATABASE_SETTINGS:
        admin.execute(f'{INTERNAL}ALTER DATABASE "{dbname}" SET {setting}')


def test_application_name(test_name: str) -> str:
    """What connections opened for a test call themselves: ``testbed:<file>::<test>`` within PostgreSQL's
    63 bytes."""
    tail = test_name.rsplit("/", 1)[-1]
    return ("testbed:" + tail).encode("ascii", "replace").decode()[:63]


class StatementCapture:
    """Publishes the statements of a set of databases from one server's structured log."""

    def __init__(self, path: Path, marker_connection: Callable[[], Any], own_pids: Callable[[], Iterable[int]]) -> None:
        self.path = path
        self.databases: set[str] = set()
        self._marker_connection = marker_connection
        self._own_pids = own_pids
        self._follower = LogFollower(path, from_end=True)
        self._remove = observe.add_source(self.flush)
        self.available = path.exists()

    def watch(self, dbname: str) -> None:
        self.databases.add(dbname)

    def close(self) -> None:
        self._remove()

    def flush(self, wait: bool = True, timeout: float = 2.0) -> None:
        """Publish every statement logged up to now (``wait``: after the server wrote a marker, so nothing that
        ran before this call is missing; else only what the log holds already)."""
        if not self.available or not self.databases:
            return
        if not wait:
            self._publish(self._follower.read_lines(), None)
            return
        token = f"{MARKER} {os.getpid()}-{next(_counter)}"
        try:
            self._marker_connection().execute(f"{INTERNAL}DO $$BEGIN RAISE LOG '{token}'; END$$")
        except Exception:
            self._publish(self._follower.read_lines(), None)  # the server is gone: what is there, at least
            return
        deadline = time.monotonic() + timeout
        polls = 0
        while not self._publish(self._follower.read_lines(), token) and time.monotonic() < deadline:
            # The server's logger writes within a fraction of a millisecond; poll finely, then back off.
            polls += 1
            time.sleep(0.0001 if polls < 50 else 0.002)

    def _publish(self, lines: list[bytes], token: str | None) -> bool:
        """Publish the records of ``lines``; True once the marker ``token`` was among them."""
        found = False
        own = None
        watched = [b'"dbname":"' + name.encode() + b'"' for name in self.databases]
        for line in lines:
            if token is not None and MARKER.encode() in line and token.encode() in line:
                found = True
                continue
            if b'"error_severity":"LOG"' in line and (b"  parse <" in line or b"  bind <" in line
                                                       or not any(d in line for d in watched)):
                continue  # the steps before an execute, and statements of other workers' databases
            record = parse_record(line)
            if record is None or MARKER in record.message:
                continue
            ours = record.dbname in self.databases
            if not ours and record.dbname:
                continue  # another worker's database, or the maintenance database
            statement = statement_of(record) if ours else None
            if statement is None:
                if record.severity in _SERVER_LOG_LEVELS:
                    observe.publish("server log", "postgres", record.describe(), at=record.at or None,
                                    service="postgres", severity=record.severity, message=record.message,
                                    detail=record.detail, database=record.dbname)
                continue
            sql = statement.sql.strip()
            if sql.startswith(INTERNAL.strip()) or record.application_name.startswith("testbed-"):
                continue  # testbed's own statements, and its tools' connections (pool pressure)
            if own is None:
                own = set(self._own_pids())
            word = sql.rstrip(";").upper()
            if word in ("BEGIN", "START TRANSACTION"):
                continue  # implicit: the driver's, before the first statement of a transaction
            if statement.pid in own and (word in _TRANSACTION_CONTROL or word == "DEALLOCATE ALL"):
                continue  # testbed's own end of the test's transaction
            self._publish_statement(record, statement, statement.pid in own)
        return found

    @staticmethod
    def _publish_statement(record: LogRecord, statement: StatementRecord, own: bool) -> None:
        shown = with_params(statement.sql, statement.params)
        summary = " ".join(shown.split())[:300] + (f"  -> ERROR {statement.error}" if statement.error else "")
        observe.publish(
            "sql", "statement", summary, at=record.at or None, engine="postgres", sql=statement.sql[:MAX_SQL],
            params=statement.params[:1000], duration_ms=statement.duration_ms, database=record.dbname,
            application_name=record.application_name, pid=record.pid, error=statement.error,
            detail=statement.detail, connection="db fixture" if own else "",
        )
