"""Per-test isolation seen from a user's suite: real pytest runs (pytester, in a subprocess)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from testbed.runners.workspace import cache_root

MIGRATIONS = Path(__file__).parent / "migrations"

PYPROJECT = """
[tool.testbed]
services = ["mysql"]

[tool.testbed.mysql]
migrations = "migrations"
"""

HELPERS = """
import os
from urllib.parse import urlparse

import pymysql
import pytest


def connect(url):
    u = urlparse(url)
    return pymysql.connect(host=u.hostname, port=u.port, user=u.username, password=u.password,
                           database=u.path.lstrip("/"), autocommit=True)


def count(conn, table):
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM " + table)
        return cur.fetchone()[0]
"""

# Each writer asserts it sees only its own rows, each reader that nothing is left: a leak in either order
# (or between xdist workers) fails a test.
SUITE = HELPERS + """

@pytest.mark.parametrize("i", range({n}))
def test_a_rollback_writes(mysql_db, i):
    with mysql_db.cursor() as cur:
        cur.execute("INSERT INTO customers (name) VALUES ('rollback')")
    mysql_db.commit()  # emulated: a savepoint
    assert count(mysql_db, "customers") == 1


@pytest.mark.parametrize("i", range({n}))
@pytest.mark.testbed(isolation="truncate")
def test_b_truncate_app_commits_on_its_own_connection(mysql_url, mysql_db, i):
    with connect(mysql_url) as app, app.cursor() as cur:
        cur.execute("INSERT INTO customers (name) VALUES ('app')")
        cur.execute("DELETE FROM plans WHERE code = 'free'")
    assert count(mysql_db, "customers") == 1
    assert count(mysql_db, "plans") == 1


@pytest.mark.parametrize("i", range({n}))
@pytest.mark.testbed(isolation="clone")
def test_c_clone_runs_ddl(mysql_db, mysql_url, i):
    assert "_t" in mysql_url.rsplit("/", 1)[1]
    with mysql_db.cursor() as cur:
        cur.execute("CREATE TABLE scratch (id INT)")
        cur.execute("INSERT INTO customers (name) VALUES ('clone')")
    mysql_db.commit()
    assert count(mysql_db, "customers") == 1


@pytest.mark.parametrize("i", range({n}))
def test_d_reader_sees_the_template_state(mysql_db, mysql_url, i):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    assert mysql_url.endswith(f"/testbed_{{worker}}")
    assert count(mysql_db, "customers") == 0
    assert count(mysql_db, "audit") == 0
    assert count(mysql_db, "plans") == 2
    with mysql_db.cursor() as cur:
        cur.execute("SHOW TABLES LIKE 'scratch'")
        assert cur.fetchall() == ()
"""


def reversed_suite(n: int) -> str:
    # Same tests, readers first: pytest runs a module's tests in file order.
    head, *tests = SUITE.format(n=n).split("\n\n@pytest.mark.parametrize")
    return "\n\n@pytest.mark.parametrize".join([head, *reversed(tests)])


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    # pytester points HOME at a temporary folder: keep using the real cache of installed data folders.
    monkeypatch.setenv("TESTBED_CACHE_DIR", str(cache_root()))
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)  # set when this suite itself runs under xdist
    pytester.makefile(".toml", pyproject=PYPROJECT)
    shutil.copytree(MIGRATIONS, pytester.path / "migrations")
    return pytester


def test_isolation_holds_in_both_orders(project: pytest.Pytester) -> None:
    project.makepyfile(test_users=SUITE.format(n=2))
    result = project.runpytest_subprocess("-q", timeout=120)
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines(["*MariaDB 10.* from * template cache *"])
    project.makepyfile(test_users=reversed_suite(2))
    project.runpytest_subprocess("-q", timeout=120).assert_outcomes(passed=8)


def test_isolation_holds_under_xdist_with_a_database_per_worker(project: pytest.Pytester) -> None:
    project.makepyfile(test_users=SUITE.format(n=6))
    result = project.runpytest_subprocess("-q", "-n", "2", timeout=120)
    result.assert_outcomes(passed=24)
    result.stdout.fnmatch_lines(["*MariaDB 10.* from *"])  # one server, started by the controller


def test_ddl_in_a_rollback_test_fails_it_and_the_next_test_is_unaffected(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_ddl=HELPERS
        + """
def test_ddl(mysql_db):
    with mysql_db.cursor() as cur:
        cur.execute("INSERT INTO customers (name) VALUES ('committed by DDL')")
        cur.execute("ALTER TABLE customers ADD COLUMN extra INT")

def test_after(mysql_db):
    assert count(mysql_db, "customers") == 0
    with mysql_db.cursor() as cur:
        cur.execute("SHOW COLUMNS FROM customers LIKE 'extra'")
        assert cur.fetchall() == ()

@pytest.mark.testbed(isolation="sideways")
def test_bad_marker(mysql_db):
    pass
"""
    )
    result = project.runpytest_subprocess("-q", "-p", "no:randomly", timeout=120)  # test_after runs after test_ddl
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines([
        "*IsolationError*test_ddl*committed its transaction*implicitly*isolation='clone'*",
        "*isolation='sideways'*choose one of*",
    ])


def test_killed_server_fails_the_test_clearly_instead_of_hanging(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_kill=HELPERS
        + """
import signal

def test_server_killed_mid_test(mysql_db, testbed_mysql_server):
    os.kill(testbed_mysql_server.pid, signal.SIGKILL)
    with mysql_db.cursor() as cur:
        cur.execute("SELECT 1")

def test_next(mysql_db):
    pass
"""
    )
    result = project.runpytest_subprocess("-q", "-p", "no:cacheprovider", timeout=120)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 1 and outcomes.get("errors", 0) >= 1
    result.stdout.fnmatch_lines([
        "*ServerDiedError*MariaDB*is no longer running*",
        "*pymysql.err.OperationalError: (20*MySQL server*",  # 2006 gone away / 2013 lost connection
    ])
    assert "last log lines" in result.stdout.str()


def test_broken_migration_errors_the_tests_with_file_and_line_under_xdist(project: pytest.Pytester) -> None:
    (project.path / "migrations" / "003_broken.sql").write_text("CREATE TABLE ok (id INT);\nCREATE TABLE (;\n")
    project.makepyfile(test_x="def test_one(mysql_db):\n    pass\n\ndef test_two(mysql_url):\n    pass\n")
    result = project.runpytest_subprocess("-q", "-n", "2", timeout=120)
    result.assert_outcomes(errors=2)  # not an INTERNALERROR of the controller
    result.stdout.fnmatch_lines(["*MigrationError*[[]MariaDB migrations[]]*003_broken.sql:2 failed*(1064)*"])
    assert "INTERNALERROR" not in result.stdout.str()
