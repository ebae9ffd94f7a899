"""Query budgets and the N+1 detector: statements counted by the server, from any connection, under xdist."""

from __future__ import annotations

import pytest

BUDGETS = """
import threading

import psycopg
import pytest
from sqlalchemy import create_engine, text

import testbed


def app_lookups(url, n):
    # The application's own pool, on another thread: only the server sees these statements.
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            for i in range(n):
                conn.execute(text("select name from customers where id = :id"), {"id": i})
    finally:
        engine.dispose()


def in_thread(fn, *args):
    t = threading.Thread(target=fn, args=args)
    t.start()
    t.join()


def test_queries_fixture_counts_every_connection(db, db_url, queries):
    db.execute("insert into customers (name) values ('a'), ('b')")
    db.commit()
    in_thread(app_lookups, db_url, 3)
    shapes = queries.shapes
    assert shapes["select name from customers where id = ?"] == 3, queries.all
    assert shapes["insert into customers (name) values (...)"] == 1, queries.all


@pytest.mark.testbed(isolation="truncate", max_queries=3)
def test_max_queries_marker_fails(db_url):
    in_thread(app_lookups, db_url, 5)


@pytest.mark.testbed(isolation="truncate", n_plus_one=4)
def test_n_plus_one_marker_fails(db_url):
    app_lookups(db_url, 6)


@pytest.mark.testbed(n_plus_one=10)
def test_under_the_threshold_passes(db_url):
    app_lookups(db_url, 6)


def test_assert_max_queries_passes_and_fails(db):
    with testbed.assert_max_queries(2):
        db.execute("select 1")
        db.execute("select 2")
    with pytest.raises(testbed.report.queries.QueryBudgetError, match="3 statements ran"):
        with testbed.assert_max_queries(2):
            for i in range(3):
                db.execute("select %s::int", (i,))
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one process", "xdist"])
def test_budgets(project: pytest.Pytester, workers: list[str]) -> None:
    project.makepyfile(test_budgets=BUDGETS)
    result = project.runpytest_subprocess("-p", "no:randomly", *workers)
    result.assert_outcomes(passed=3, failed=2)
    out = result.stdout.str()
    budget = out.split("_ test_max_queries_marker_fails _", 1)[1]
    # The engine's own first statements (version, schema) count too: the server saw them.
    assert "statements ran on the test's databases in the test; at most 3 allowed" in budget
    assert "select name from customers where id = '4'" in budget.split("testbed transcript")[0], budget
    nplus = out.split("_ test_n_plus_one_marker_fails _", 1)[1]
    assert "N+1 queries: the same statement shape ran more than 4 times" in nplus
    assert "6x  select name from customers where id = ?" in nplus
    assert "from " in nplus and "test_budgets.py:" in nplus and "in app_lookups" in nplus  # the call site


def test_n_plus_one_from_the_config(project: pytest.Pytester) -> None:
    with open(project.path / "pyproject.toml", "a") as f:
        f.write("[tool.testbed]\nn_plus_one = 2\n")
    project.makepyfile(test_loop="""
        def test_loop(db):
            for i in range(3):
                db.execute("select * from orders where customer_id = %s", (i,))
        """)
    result = project.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(failed=1)
    assert "3x  select * from orders where customer_id = ?" in result.stdout.str()
