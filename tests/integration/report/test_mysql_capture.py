"""MariaDB/MySQL statements in the transcript and the query budgets, from the server's slow query log: the
test's own connection and the application's."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

MIGRATIONS = Path(__file__).parent.parent / "mysql" / "migrations"

SUITE = """
from urllib.parse import urlparse

import pymysql
import pytest


def test_app_and_fixture_statements(mysql_db, mysql_url):
    with mysql_db.cursor() as cur:
        cur.execute("INSERT INTO customers (name) VALUES ('fixture')")
    u = urlparse(mysql_url)
    app = pymysql.connect(host=u.hostname, port=u.port, user=u.username, password=u.password,
                          database=u.path.lstrip("/"), autocommit=True)
    try:
        with app.cursor() as cur:
            cur.execute("SELECT name FROM customers WHERE name = 'nobody'")
    finally:
        app.close()
    assert False, "the customer was not found"


@pytest.mark.testbed(n_plus_one=3)
def test_n_plus_one(mysql_db):
    with mysql_db.cursor() as cur:
        for i in range(5):
            cur.execute("SELECT name FROM customers WHERE id = %s", (i,))
"""


@pytest.fixture(autouse=True)
def _needs_mariadb() -> None:
    from testbed.config import ServiceSettings
    from testbed.services.mysql import discover

    if not discover(ServiceSettings(engine="mysql")):
        pytest.fail("no MariaDB/MySQL server binary: install mariadb-server", pytrace=False)


def test_mysql_statements_in_the_transcript_and_budgets(pytester: pytest.Pytester) -> None:
    shutil.copytree(MIGRATIONS, pytester.path / "migrations")
    (pytester.path / "pyproject.toml").write_text('[tool.testbed.mysql]\nmigrations = "migrations"\n')
    pytester.makepyfile(test_mysql=SUITE)
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    first = out.split("_ test_app_and_fixture_statements _", 1)[1].split("testbed transcript", 1)[1]
    assert "INSERT INTO customers (name) VALUES ('fixture')" in first and "[mysql_db fixture]" in first, first
    assert "SELECT name FROM customers WHERE name = 'nobody'" in first, first
    assert "[connection " in first.split("WHERE name = 'nobody'", 1)[1].splitlines()[0]  # the app's
    nplus = out.split("_ test_n_plus_one _", 1)[1]
    assert "5x  select name from customers where id = ?" in nplus, nplus
