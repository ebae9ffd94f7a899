"""runner = "existing": a server testbed did not start (here the machine's pre-started one on 5432).

Skipped with a reason where no such server runs. testbed only creates databases there (a template per
migrations hash, kept for the next run; per-run worker databases, dropped) and touches nothing else.
"""

from __future__ import annotations

import psycopg
import pytest

EXISTING_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _existing_databases() -> set[str]:
    with psycopg.connect(EXISTING_URL, connect_timeout=2) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database").fetchall()}


@pytest.fixture
def existing(pytester: pytest.Pytester) -> pytest.Pytester:
    try:
        _existing_databases()
    except psycopg.OperationalError as exc:
        pytest.skip(f"no existing PostgreSQL at {EXISTING_URL} with trust auth for 'postgres' ({exc})")
    (pytester.path / "migrations").mkdir()
    (pytester.path / "migrations" / "001.sql").write_text(
        "CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL);\n"
        f"-- {pytester.path.name}: a template of this test's own\n"
    )
    pytester.makepyprojecttoml(
        f'[tool.testbed.postgres]\nrunner = "existing"\nurl = "{EXISTING_URL}"\nmigrations = "migrations/"\n'
    )
    return pytester


def test_isolation_on_an_existing_server_leaves_only_the_template(existing: pytest.Pytester) -> None:
    before = _existing_databases()
    existing.makepyfile(
        """
        import psycopg
        import pytest

        def test_a(db, postgres):
            assert postgres.binary == "(existing server)"
            db.execute("insert into items (name) values ('a')")
            assert db.execute("select count(*) from items").fetchone() == (1,)

        def test_b(db):
            assert db.execute("select count(*) from items").fetchone() == (0,)

        @pytest.mark.testbed(isolation="truncate")
        def test_c(db_url):
            with psycopg.connect(db_url) as conn:
                conn.execute("insert into items (name) values ('c')")

        @pytest.mark.testbed(isolation="clone")
        def test_d(db):
            assert db.execute("select count(*) from items").fetchone() == (0,)
        """
    )
    existing.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=4)
    created = _existing_databases() - before
    assert len(created) == 1 and next(iter(created)).startswith("testbed_tpl_"), created
    # a second run reuses that template and again leaves nothing else behind
    existing.runpytest_subprocess("-p", "no:randomly", "-n", "2").assert_outcomes(passed=4)
    assert _existing_databases() - before == created
    with psycopg.connect(EXISTING_URL, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{next(iter(created))}" WITH IS_TEMPLATE false')
        conn.execute(f'DROP DATABASE "{next(iter(created))}"')


def test_wrong_version_pin_against_existing_server(existing: pytest.Pytester) -> None:
    existing.makepyprojecttoml(
        f'[tool.testbed.postgres]\nrunner = "existing"\nurl = "{EXISTING_URL}"\nversion = "9"\n'
    )
    existing.makepyfile("def test_x(db):\n    pass\n")
    result = existing.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*PostgreSQL 9 requested, but the existing server at 127.0.0.1:5432 is *"])
