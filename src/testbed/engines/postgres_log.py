"""PostgreSQL's structured server log (``log_destination = jsonlog``, PostgreSQL 15+): one JSON object a line.

testbed's servers write it next to their stderr log. With ``log_min_duration_statement = 0`` on a
database, every statement any connection runs there is a record with its duration ("duration: 0.05 ms
statement: ..."), and a failed statement is an ERROR record carrying the statement, SQLSTATE and detail.
This module reads those records; ``testbed.isolation.statement_log`` turns them into per-test events.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

JSONLOG_MIN_MAJOR = 15
LOG_FILENAME = "postgres.log"  # log_filename; jsonlog writes <stem>.json next to it
JSON_NAME = "postgres.json"

# "duration: 0.052 ms  statement: select 1" (simple protocol) / "duration: 0.01 ms  execute <unnamed>: ..."
# (extended protocol; its parse and bind steps are logged too and skipped).
_DURATION = re.compile(r"duration: ([0-9.]+) ms  (statement|execute [^:]*|parse [^:]*|bind [^:]*): (.*)", re.S)
_PARAM = re.compile(r"\$(\d+) = ('(?:[^']|'')*'|NULL)")


def log_settings(log_dir: str, major: int) -> dict[str, str]:
    """Server settings that write the structured log into ``log_dir`` (nothing for a server before 15)."""
    if major < JSONLOG_MIN_MAJOR:
        return {}
    return {
        "logging_collector": "on",
        "log_destination": "jsonlog",
        "log_directory": log_dir,
        "log_filename": LOG_FILENAME,
        "log_rotation_size": "0",
        "log_rotation_age": "0",
        "log_file_mode": "0640",
        "log_timezone": "UTC",
    }


def json_log_path(stderr_log: str) -> Path | None:
    """Where a server testbed started writes its structured log, given its stderr log (None: it has none)."""
    if not stderr_log:
        return None
    path = Path(stderr_log).parent / "log" / JSON_NAME
    return path


@dataclass(frozen=True)
class LogRecord:
    """One record of the structured log."""

    at: float  # wall clock, seconds
    pid: int
    dbname: str
    application_name: str
    severity: str  # LOG, ERROR, WARNING, FATAL, ...
    message: str
    statement: str = ""  # the failed statement of an ERROR
    detail: str = ""
    hint: str = ""
    state_code: str = ""
    backend_type: str = ""
    context: str = ""  # a failed statement's parameters: "unnamed portal with parameters: $1 = '5'"

    def describe(self) -> str:
        """The record as one log line for a person."""
        when = datetime.fromtimestamp(self.at, UTC).strftime("%H:%M:%S.%f")[:-3]
        where = f" {self.dbname}" if self.dbname else ""
        app = f" [{self.application_name}]" if self.application_name else ""
        text = f"{when} {self.severity}{where}{app}: {self.message}"
        if self.detail:
            text += f" DETAIL: {self.detail}"
        if self.statement:
            text += f" STATEMENT: {self.statement}"
        return text


def parse_time(text: str) -> float:
    """'2024-05-01 10:00:00.123 UTC' -> seconds since the epoch (log_timezone is UTC on our servers)."""
    stamp = text.rsplit(" ", 1)[0] if text.endswith(("UTC", "GMT")) else text
    try:
        return datetime.fromisoformat(stamp).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return 0.0


def parse_record(line: bytes) -> LogRecord | None:
    """One line of the log; None for a line that is not a record (cut short, not JSON)."""
    try:
        raw: dict[str, Any] = json.loads(line)
    except ValueError:
        return None
    if not isinstance(raw, dict):
        return None
    return LogRecord(
        at=parse_time(str(raw.get("timestamp", ""))), pid=int(raw.get("pid") or 0), dbname=str(raw.get("dbname") or ""),
        application_name=str(raw.get("application_name") or ""), severity=str(raw.get("error_severity") or ""),
        message=str(raw.get("message") or ""), statement=str(raw.get("statement") or ""),
        detail=str(raw.get("detail") or ""), hint=str(raw.get("hint") or ""),
        state_code=str(raw.get("state_code") or ""), backend_type=str(raw.get("backend_type") or ""),
        context=str(raw.get("context") or ""),
    )


@dataclass(frozen=True)
class StatementRecord:
    """A statement a client ran, as the server logged it: completed (with its duration) or failed."""

    at: float
    pid: int
    dbname: str
    application_name: str
    sql: str
    duration_ms: float | None = None
    params: str = ""
    error: str = ""  # "23505 duplicate key value violates unique constraint ..." when it failed
    detail: str = ""


def statement_of(record: LogRecord) -> StatementRecord | None:
    """The statement ``record`` logs, or None (a parse/bind step, or a record about something else)."""
    if record.severity == "LOG":
        m = _DURATION.match(record.message)
        if m is None or m.group(2).startswith(("parse", "bind")):
            return None
        params = record.detail[len("parameters: "):] if record.detail.lower().startswith("parameters: ") else ""
        return StatementRecord(record.at, record.pid, record.dbname, record.application_name, m.group(3),
                               float(m.group(1)), params=params)
    if record.severity == "ERROR" and record.statement:
        error = f"{record.state_code} {record.message}".strip()
        params = record.context.split("parameters: ", 1)[1] if "parameters: " in record.context else ""
        return StatementRecord(record.at, record.pid, record.dbname, record.application_name, record.statement,
                               error=error, detail=record.detail, params=params)
    return None


def with_params(sql: str, params: str) -> str:
    """``sql`` with its $n placeholders replaced by the logged parameter values (for reading, not running)."""
    if not params:
        return sql
    values = {m.group(1): m.group(2) for m in _PARAM.finditer(params)}
    return re.sub(r"\$(\d+)\b", lambda m: values.get(m.group(1), m.group(0)), sql)


def render_tail(path: Path, lines: int = 25, max_bytes: int = 256 * 1024) -> str:
    """The last ``lines`` records of the structured log that are not statements (errors, warnings, server
    events), one line each: what a person needs when the server failed."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return ""
    out = []
    for line in data.split(b"\n"):
        record = parse_record(line)
        if record is None or (record.severity == "LOG" and _DURATION.match(record.message)):
            continue
        out.append("    " + record.describe())
    return "\n".join(out[-lines:])
