"""pytester: what a user sees when a test runs out of pool connections (SQLAlchemy's pool, or any other)."""

from __future__ import annotations

import pytest

SUITE = '''
import pytest
from psycopg_pool import ConnectionPool, PoolTimeout
from sqlalchemy import create_engine, text

KEPT = []


@pytest.fixture
def engine(db_url):
    e = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1), pool_size=2, max_overflow=0,
                      pool_timeout=0.3)
    yield e
    e.dispose()


def lifetime_value_leaky(engine):
    conn = engine.connect()  # the planted bug: checked out, never returned
    KEPT.append(conn)
    return conn.execute(text("SELECT count(*) FROM customers")).scalar()


def lifetime_value_fixed(engine):
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM customers")).scalar()


@pytest.mark.testbed(isolation="truncate")
@pytest.mark.parametrize("lifetime_value", [lifetime_value_leaky, lifetime_value_fixed], ids=["leaky", "fixed"])
def test_three_requests_on_a_pool_of_two(engine, lifetime_value):
    for _ in range(3):
        assert lifetime_value(engine) == 0


@pytest.mark.testbed(isolation="truncate")
def test_on_demand(engine, testbed_pool_pressure):
    with engine.connect() as conn:
        conn.execute(text("SELECT 'held on purpose'"))
        report = testbed_pool_pressure.report()
        (held,) = report.held()
        assert held.last_statement == "SELECT 'held on purpose'"
        assert "in test_on_demand" in report.text()
        assert any(s.pid == held.backend_pid for s in report.server)


@pytest.fixture
def psycopg_pool(db_url):
    pool = ConnectionPool(db_url, min_size=1, max_size=1, timeout=0.3, open=True)
    pool.held = []
    yield pool
    for conn in pool.held:
        pool.putconn(conn)
    pool.close()


@pytest.mark.testbed(isolation="truncate")
def test_another_pool(psycopg_pool):
    held = psycopg_pool.getconn()  # a background job that keeps its connection
    psycopg_pool.held.append(held)
    held.execute("SELECT 'psycopg_pool holds me'")
    with psycopg_pool.connection():
        pass
'''


def test_a_pool_timeout_names_the_held_connections_and_where_they_were_checked_out(project: pytest.Pytester) -> None:
    project.makepyfile(test_app=SUITE)
    result = project.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=2)  # the leaky test's teardown finding joins its failure
    out = result.stdout.str()
    # the leaky variant: the timeout, then the two connections with the line that checked each out
    result.stdout.fnmatch_lines([
        "*_ test_three_requests_on_a_pool_of_two[[]leaky] _*",
        "E * sqlalchemy.exc.TimeoutError: QueuePool limit of size 2 overflow 0 reached*",
        "*- testbed pool pressure -*",
        "[[]pool pressure] QueuePool limit of size 2 overflow 0 reached, connection timed out, timeout 0.30 (in *)",
        "SQLAlchemy QueuePool postgresql://*/testbed_main (Pool size: 2 *): 2 checked out",
        "  - backend pid *, checked out * s ago by thread MainThread, idle in transaction, last statement * s ago: "
        "'SELECT count(*) FROM customers'",
        "    checked out at:",
        "*in test_three_requests_on_a_pool_of_two",
        "*assert lifetime_value(engine) == 0",
        "*in lifetime_value_leaky",
        "*conn = engine.connect()  # the planted bug: checked out, never returned",
        "PostgreSQL's view of database 'testbed_main' (pg_stat_activity, * other client session(s)):",
        # named after the test that opened them (PGAPPNAME while it runs), cut at PostgreSQL's 63 bytes
        "  - pid * 'testbed:test_app.py::test_three_requests_on_a_pool_of_two[[]leaky' from 127.0.0.1/32 "
        "[[]held by QueuePool *]: idle in transaction for * s, *",
    ])
    # the leak check after it (folded into the test's failure) names the same connections, with their
    # checkout stacks
    result.stdout.fnmatch_lines([
        "*_ test_three_requests_on_a_pool_of_two[[]leaky] _*",
        "*- testbed: also at teardown -*",
        "E *2 database connection(s) opened by * are still open:*",
        "*- testbed pool pressure (at teardown) -*",
        "The leaked connection(s) came from a SQLAlchemy pool and were never checked back in:",
        "*in lifetime_value_leaky",
    ])
    # any pool: psycopg_pool's timeout gets the server's view while its fixture still holds the connection
    result.stdout.fnmatch_lines([
        "*_ test_another_pool _*",
        "E *psycopg_pool.PoolTimeout: couldn't get a connection after 0.30 sec",
        "*- testbed pool pressure -*",
        "[[]pool pressure] couldn't get a connection after 0.30 sec (seen when the test failed)",
        "No SQLAlchemy pool of this process held a connection.",
        "PostgreSQL's view of database 'testbed_main' (pg_stat_activity, * other client session(s)):",
        "*- pid * 'testbed:test_app.py::test_another_pool' from 127.0.0.1/32: idle in transaction for * s, "
        "transaction open * s, "
        "last query: \"SELECT 'psycopg_pool holds me'\"",
    ])
    assert "[fixed]" not in out.split("short test summary")[1]  # the fixed variant is not among the failures
    leak = out.split("testbed: also at teardown", 1)[1].split("testbed pool pressure (at teardown)", 1)[0]
    assert "pool_pressure.py" not in leak
