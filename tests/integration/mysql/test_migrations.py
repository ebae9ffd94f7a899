"""Migrations into the MariaDB/MySQL template: what they build, how failures read, the cache key."""

from __future__ import annotations

from pathlib import Path

import pytest

import testbed
from testbed.config import ServiceSettings
from testbed.errors import MigrationError
from testbed.provision_mysql import RunningMysql, start_mysql
from testbed.schema.mysql_migrations import content_key, migration_source


def test_template_holds_tables_seed_rows_triggers_and_views(mysql_running: RunningMysql) -> None:
    with mysql_running.connect(autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SHOW FULL TABLES")
        assert set(cur.fetchall()) == {
            ("audit", "BASE TABLE"), ("customers", "BASE TABLE"), ("orders", "BASE TABLE"),
            ("plans", "BASE TABLE"), ("plan_features", "BASE TABLE"), ("customer_orders", "VIEW"),
        }
        cur.execute("INSERT INTO customers (name) VALUES ('Sam')")  # the migration's trigger fires in the copy
        cur.execute("SELECT what FROM audit")
        assert cur.fetchall() == (("customer Sam",),)
        cur.execute("SELECT name, orders FROM customer_orders")
        assert cur.fetchall() == (("Sam", 0),)
        cur.execute("SELECT DEFAULT(note) FROM orders LIMIT 1")
        cur.execute("SHOW CREATE TABLE orders")
        ddl = cur.fetchone()[1]
        assert "FOREIGN KEY (`customer_id`) REFERENCES `customers`" in ddl  # foreign keys survive the copy
        assert "it\\'s; fine" in ddl or "it''s; fine" in ddl
        mysql_running.database.clean_tables(mysql_running.dbname, {"customers", "audit"})


def test_failing_statement_is_named_with_file_line_and_server_message(migrations_copy: Path) -> None:
    (migrations_copy / "003_broken.sql").write_text(
        "CREATE TABLE fine (id INT);\n\n-- next one is wrong\nALTER TABLE nowhere ADD COLUMN x INT;\n"
    )
    settings = ServiceSettings(engine="mysql", migrations=str(migrations_copy))
    with pytest.raises(MigrationError) as err:
        start_mysql(settings)
    text = str(err.value)
    assert f"{migrations_copy / '003_broken.sql'}:4 failed" in text
    assert "statement: ALTER TABLE nowhere ADD COLUMN x INT" in text
    assert "(1146)" in text and "nowhere" in text and "doesn't exist" in text
    assert "commits DDL implicitly" in text
    assert "last log lines" in text


def test_content_key_follows_every_byte_of_the_migrations(migrations_copy: Path) -> None:
    before = content_key(migration_source(str(migrations_copy), migrations_copy.parent))
    f = migrations_copy / "002_audit.sql"
    f.write_text(f.read_text() + "\n-- a comment changes the key too\n")
    after = content_key(migration_source(str(migrations_copy), migrations_copy.parent))
    assert before != after


ENV_IGNORING_URL = """
import os
from alembic import context
from sqlalchemy import create_engine

# Like many real env.py files: the URL comes from the application's settings, not from alembic's config.
engine = create_engine(os.environ.get(os.environ["HONOUR"]) if os.environ.get("HONOUR") else
                       os.environ.get("APP_DATABASE_URL") or
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
    (versions / "0001_widgets.py").write_text(
        "from alembic import op\nrevision = '0001'\ndown_revision = None\n\n"
        "def upgrade():\n    op.execute('CREATE TABLE widgets (id INT PRIMARY KEY, name VARCHAR(20))')\n"
    )


def test_an_env_py_that_ignores_the_url_is_caught_and_not_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _alembic_project(tmp_path)
    monkeypatch.setenv("TESTBED_CACHE_DIR", str(tmp_path / "cache"))
    for _attempt in range(2):  # the second run must not find an empty template cached by the first
        with pytest.raises(MigrationError) as caught, testbed.mysql(migrations="alembic", root=tmp_path):
            pass
        message = str(caught.value)
        assert "has no alembic_version table, not at head (0001)" in message
        assert str(tmp_path / "alembic" / "env.py") in message
        assert "TESTBED_DATABASE_URL" in message
        assert "MariaDB migrations" in message or "MySQL migrations" in message
    assert (tmp_path / "alembic" / "app.db").exists(), "the migration did run elsewhere: the message must say so"


@pytest.mark.parametrize("env_py_reads", ["TESTBED_DATABASE_URL", "APP_DATABASE_URL"])
def test_the_env_var_idiom_and_the_hand_off_migrate_the_template(
    env_py_reads: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _alembic_project(tmp_path)
    # The application's own variable, handed over in [tool.testbed.env]: it names the template while migrating.
    (tmp_path / "pyproject.toml").write_text('[tool.testbed.env]\nAPP_DATABASE_URL = "{mysql.sqlalchemy_url}"\n')
    monkeypatch.setenv("HONOUR", env_py_reads)
    monkeypatch.setenv("TESTBED_CACHE_DIR", str(tmp_path / "cache"))  # built here, not found in a cache
    with testbed.mysql(migrations="alembic", root=tmp_path) as m, m.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT version_num FROM alembic_version")
        assert cur.fetchall() == (("0001",),)
