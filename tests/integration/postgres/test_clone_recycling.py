"""Clone isolation reuses a clone whose test changed no schema (put back to its template state), and
drops one that ran DDL; either way the next clone test starts from the template."""

from __future__ import annotations

import pytest

SUITE = """
import pytest

CLONE = pytest.mark.testbed(isolation="clone")
NAMES = []

@CLONE
def test_1_writes(db):
    NAMES.append(db.execute("select current_database()").fetchone()[0])
    db.execute("insert into customers (name) values ('a')")
    db.commit()
    db.execute("select nextval('customers_id_seq')")
    db.execute("set search_path to pg_catalog")   # session state must not survive either
    db.execute("create temp table scratch (x int)")

@CLONE
def test_2_clean(db):
    NAMES.append(db.execute("select current_database()").fetchone()[0])
    assert NAMES[1] == NAMES[0], "no schema change: the same clone serves the next test"
    assert db.execute("show search_path").fetchone() != ("pg_catalog",)
    assert db.execute("select count(*) from customers").fetchone() == (0,)
    db.execute("insert into customers (name) values ('b') returning id")
    assert db.execute("select max(id) from customers").fetchone() == (1,)   # the sequence is back too

@CLONE
def test_3_ddl(db):
    NAMES.append(db.execute("select current_database()").fetchone()[0])
    db.execute("alter table customers add column vip bool")
    db.commit()

@CLONE
def test_4_schema_is_the_templates(db):
    assert db.execute("select current_database()").fetchone()[0] != NAMES[2], "a clone that ran DDL was reused"
    cols = db.execute("select column_name from information_schema.columns where table_name = 'customers'")
    assert "vip" not in {r[0] for r in cols.fetchall()}
    assert db.execute("select to_regclass('scratch')").fetchone() == (None,)
"""


def test_recycled_and_dropped_clones_both_start_clean(project: pytest.Pytester) -> None:
    project.makepyfile(test_clones=SUITE)
    project.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=4)
