"""Migrations that would silently migrate another database, or wait forever, fail with what to do."""

from __future__ import annotations

import textwrap
import threading
from pathlib import Path

import psycopg
import pytest

from testbed import postgres
from testbed.errors import MigrationError

ENV_IGNORING_URL = """
import os
from alembic import context
from sqlalchemy import create_engine

# Like many real env.py files: the URL comes from the application's settings, not from alembic's config.
engine = create_engine(os.environ.get("TESTBED_DATABASE_URL") if os.environ.get("HONOUR") else
                       "sqlite:///" + os.path.join(os.path.dirname(__file__), "app.db"))
with engine.connect() as connection:
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
"""


def _alembic_project(root: Path) -> None:
    (root / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s/alembic\n")
    versions = root / "alembic" / "versions"
    versions.mkdir(parents=True)
    (root / "alembic" / "env.py").write_text(ENV_IGNORING_URL)
    (root / "alembic" / "script.py.mako").write_text("")
    (versions / "0001_widgets.py").write_text(textwrap.dedent(
        """
        from alembic import op
        revision = "0001"
        down_revision = None

        def upgrade():
            op.execute("CREATE TABLE widgets (id integer PRIMARY KEY, name text)")
        """
    ))


def test_an_env_py_that_ignores_the_url_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _alembic_project(tmp_path)
    monkeypatch.setenv("TESTBED_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(MigrationError) as caught, postgres(migrations="alembic", root=tmp_path):
        pass
    message = str(caught.value)
    assert "has no alembic_version table, not at head (0001)" in message
    assert str(tmp_path / "alembic" / "env.py") in message
    assert "TESTBED_DATABASE_URL" in message
    assert (tmp_path / "alembic" / "app.db").exists(), "the migration did run elsewhere: the message must say so"
    assert not (tmp_path / "cache" / "postgres").exists() or not list((tmp_path / "cache").rglob("clusters/*")), (
        "an empty template was cached"
    )


def test_the_env_var_idiom_migrates_the_template(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _alembic_project(tmp_path)
    monkeypatch.setenv("HONOUR", "1")
    with postgres(migrations="alembic", root=tmp_path) as pg, psycopg.connect(pg.url) as conn:
        assert conn.execute("select version_num from alembic_version").fetchone() == ("0001",)


def test_a_migration_waiting_on_a_lock_fails_naming_the_file_statement_and_blocker(
    pytester: pytest.Pytester, make_project  # type: ignore[no-untyped-def]
) -> None:
    make_project(pytester.path, table="migration_timeout = 3")
    (pytester.path / "migrations" / "002_slow.sql").write_text(
        "CREATE TABLE quick (id int);\n\nSELECT pg_sleep(600);\n"
    )
    pytester.makepyfile("def test_x(db):\n    pass\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*SQL files in */migrations did not finish within 3 s (migration_timeout) and was cancelled.*",
        "*waiting for Timeout: PgSleep*",
        "*002_slow.sql:3 failed*",
        "*statement: SELECT pg_sleep(600)*",
    ])


def test_a_lock_held_elsewhere_names_the_blocking_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The callable migration opens a second connection that takes a lock and keeps it: the migration's own
    # statement then waits for it; the error must name that blocking session.
    import sys

    (tmp_path / "blocking_migration.py").write_text(textwrap.dedent(
        """
        import psycopg
        HOLDERS = []

        def migrate(url):
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CREATE TABLE accounts (id int)")
            holder = psycopg.connect(url, application_name="the-holder")
            holder.execute("LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE")
            HOLDERS.append(holder)
            with psycopg.connect(url) as conn:
                conn.execute("ALTER TABLE accounts ADD COLUMN name text")
        """
    ))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("TESTBED_CACHE_DIR", str(tmp_path / "cache"))
    try:
        with pytest.raises(MigrationError) as caught, postgres(migrations="blocking_migration:migrate", root=tmp_path,
                                                             migration_timeout=2):
            pass
        message = str(caught.value)
        assert "waiting for Lock: relation" in message
        assert "statement: ALTER TABLE accounts ADD COLUMN name text" in message
        assert "blocked by pid" in message and "the-holder" in message
    finally:
        for holder in sys.modules["blocking_migration"].HOLDERS:
            holder.close()
    assert threading.active_count() < 20
