"""Pure logic of the transcript: statement shapes, the server log formats, following a log file, the
failure section's order, GitHub annotations."""

from __future__ import annotations

import json
import time
from pathlib import Path

from testbed.engines.postgres_log import parse_record, statement_of, with_params
from testbed.isolation.mysql_statement_log import parse_entries
from testbed.observe import BoundaryEvent
from testbed.report.github import annotation
from testbed.report.shapes import is_query, repeats, shape
from testbed.report.transcript import Transcript, failure_section
from testbed.runners.log_follow import LogFollower


def test_shapes_take_values_out() -> None:
    assert shape("SELECT * FROM t WHERE id = 42 AND name = 'O''Brien'") == "select * from t where id = ? and name = ?"
    assert shape("select * from t where id = $1") == shape("select * from t where id = %(id)s") == shape(
        "select * from t where id = %s") == shape("select * from t where id = :id") == "select * from t where id = ?"
    assert shape("select * from t where id in (1, 2, 3)") == shape("select * from t where id in ($1,$2)")
    assert shape("insert into t (a, b) values (1, 'x'), (2, 'y')") == "insert into t (a, b) values (...)"
    quoted = 'select "CamelCase" from t2 where x::text = \'a\' -- note'
    assert shape(quoted) == 'select "CamelCase" from t2 where x::text = ?'
    assert shape("select 1.5e3, -7 from t") == "select ?, ? from t"


def test_budgets_count_queries_not_transaction_control() -> None:
    assert not is_query(shape("BEGIN")) and not is_query(shape("savepoint sa_1")) and not is_query("set names utf8")
    assert is_query(shape("select 1"))
    found = repeats([shape(f"select * from t where id = {i}") for i in range(5)] + ["commit"] * 9, 3,
                    {"select * from t where id = ?": "app.py:3 in load"})
    assert [(r.shape, r.count, r.call_site) for r in found] == [("select * from t where id = ?", 5, "app.py:3 in load")]


def _jsonlog(**fields: object) -> bytes:
    base = {"timestamp": "2026-01-02 03:04:05.678 UTC", "pid": 7, "dbname": "testbed_gw0", "application_name": "app"}
    return json.dumps({**base, **fields}).encode()


def test_postgres_jsonlog_records() -> None:
    done = parse_record(_jsonlog(error_severity="LOG", message="duration: 0.052 ms  execute <unnamed>: select $1",
                                 detail="parameters: $1 = 'O''Brien'"))
    assert done is not None and done.at == 1767323045.678
    stmt = statement_of(done)
    assert stmt is not None and (stmt.sql, stmt.duration_ms, stmt.params) == ("select $1", 0.052, "$1 = 'O''Brien'")
    assert with_params(stmt.sql, stmt.params) == "select 'O''Brien'"
    failed = statement_of(parse_record(_jsonlog(error_severity="ERROR", state_code="23505", message="duplicate key",
                                                statement="insert into t values (1)", detail="Key (id)=(1)")))
    assert failed is not None and failed.error == "23505 duplicate key" and failed.duration_ms is None
    assert statement_of(parse_record(_jsonlog(error_severity="LOG", message="duration: 0.01 ms  parse <unnamed>: x")))\
        is None
    assert parse_record(b'{"timestamp": "cut sh') is None


def test_mariadb_slow_log_entries() -> None:
    text = """/usr/sbin/mariadbd, Version: 10.11 started with:
# Time: 260102  3:04:05
# User@Host: root[root] @ localhost []
# Thread_id: 12  Schema: testbed_gw0  QC_hit: No
# Query_time: 0.000250  Lock_time: 0.000010  Rows_sent: 3  Rows_examined: 9
# Rows_affected: 0  Bytes_sent: 120
use testbed_gw0;
SET timestamp=1767323045;
SELECT *
FROM customers;"""
    [entry] = parse_entries(text.splitlines())
    assert (entry.thread_id, entry.schema, entry.rows_sent, entry.rows_examined) == (12, "testbed_gw0", 3, 9)
    assert entry.sql == "SELECT *\nFROM customers" and entry.duration_ms == 0.25


def test_log_follower_whole_lines_rotation(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_bytes(b"before\n")
    follower = LogFollower(log)
    with open(log, "ab") as f:
        f.write(b"one\ntw")
    assert follower.read_lines() == [b"one"]
    with open(log, "ab") as f:
        f.write(b"o\n")
    assert follower.read_lines() == [b"two"]
    log.unlink()
    log.write_bytes(b"new file\n")  # rotated: read from its start
    assert follower.read_lines() == [b"new file"]


def _event(boundary: str, kind: str, summary: str, at: float, **data: object) -> BoundaryEvent:
    return BoundaryEvent(boundary, kind, summary, data, at)


def test_failure_section_puts_the_error_first_and_stays_short() -> None:
    t0 = time.time()
    t = Transcript("t.py::test_x", t0)
    for i in range(30):
        t.add(_event("sql", "statement", f"select {i}", t0 + i / 1000, sql=f"select {i}", duration_ms=0.1))
    t.add(_event("http", "exchange", "POST /pay -> 200 (pay)", t0 + 0.031, status=200, request_body='{"a":1}'))
    t.add(_event("sql", "statement", "insert into t values (1)  -> ERROR 23505 duplicate key", t0 + 0.032,
                 sql="insert into t values (1)", error="23505 duplicate key", detail="Key (id)=(1)"))
    text = failure_section(t)
    assert text.index("SQL errors:") < text.index("last statements") < text.index("HTTP exchanges")
    assert "23505 duplicate key" in text and "Key (id)=(1)" in text and "select 29" in text and "select 3 " not in text
    assert len(text.splitlines()) <= 41


def test_github_annotation_is_one_line() -> None:
    line = annotation({"nodeid": "tests/test_a.py::test_x", "location": ("tests/test_a.py", 9, "test_x"),
                       "crash": "assert 1 == 0", "section": "SQL errors:\n  insert: 100% done, ok"})
    assert line.startswith("::error file=tests/test_a.py,line=10,title=tests/test_a.py%3A%3Atest_x::assert 1 == 0%0A")
    assert "\n" not in line and "100%25 done" in line
