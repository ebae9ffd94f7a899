"""Migration sources (SQL folder, Alembic, a callable) and the content-hash template cache."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import psycopg
import pytest

from testbed.config import ServiceSettings
from testbed.provision import postgres, start_postgres


def test_changed_migration_invalidates_cache(tmp_path: Path) -> None:
    mig = tmp_path / "migrations"
    mig.mkdir()
    # A unique comment: the cache outlives this test, and must not answer from an earlier run.
    (mig / "001.sql").write_text(f"-- {uuid.uuid4()}\nCREATE TABLE t1 (id int);")
    settings = ServiceSettings(engine="postgres", migrations="migrations")
    first = start_postgres(settings, tmp_path)
    first.stop()
    second = start_postgres(settings, tmp_path)
    second.stop()
    assert second.cache_hit, "unchanged migrations must start from the cached cluster"
    (mig / "002.sql").write_text("CREATE TABLE t2 (id int);")
    third = start_postgres(settings, tmp_path)
    try:
        assert not third.cache_hit, "a new migration must rebuild the template by itself"
        with third.connect("testbed_template") as conn:
            assert conn.execute("select to_regclass('t2') is not null").fetchone() == (True,)
    finally:
        third.stop()


def test_alembic_migrations(tmp_path: Path) -> None:
    (tmp_path / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s/alembic\n")
    versions = tmp_path / "alembic" / "versions"
    versions.mkdir(parents=True)
    (tmp_path / "alembic" / "env.py").write_text(
        textwrap.dedent(
            """
            from alembic import context
            from sqlalchemy import create_engine

            engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
            with engine.connect() as connection:
                context.configure(connection=connection)
                with context.begin_transaction():
                    context.run_migrations()
            engine.dispose()
            """
        )
    )
    (tmp_path / "alembic" / "script.py.mako").write_text("")
    (versions / "0001_widgets.py").write_text(
        textwrap.dedent(
            """
            from alembic import op
            revision = "0001"
            down_revision = None

            def upgrade():
                op.execute("CREATE TABLE widgets (id serial PRIMARY KEY, name text)")
            """
        )
    )
    with postgres(migrations="alembic", root=tmp_path) as pg, psycopg.connect(pg.url) as conn:
        assert conn.execute("select version_num from alembic_version").fetchone() == ("0001",)
        conn.execute("insert into widgets (name) values ('w')")


def test_callable_migrations(pytester: pytest.Pytester) -> None:
    pytester.syspathinsert()
    pytester.makepyfile(
        mymigrations="""
        import psycopg

        def migrate(url):
            with psycopg.connect(url) as conn:
                conn.execute("CREATE TABLE gadgets (id int)")
        """
    )
    with postgres(migrations="mymigrations:migrate", root=pytester.path) as pg, psycopg.connect(pg.url) as conn:
        assert conn.execute("select count(*) from gadgets").fetchone() == (0,)


def test_library_api_without_pytest_gives_url_version_binary(tmp_path: Path) -> None:
    with postgres() as pg:
        with psycopg.connect(pg.url) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
        assert pg.version.split(".")[0].isdigit()
        assert Path(pg.binary).name == "postgres"
