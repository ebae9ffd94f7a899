"""Which tables a test wrote is known exactly: writes from any connection count, reads and rollbacks don't."""

from __future__ import annotations

from pathlib import Path

import psycopg

from testbed.provision import postgres

SCHEMA = """
CREATE TABLE a (id bigserial PRIMARY KEY, v text);
CREATE TABLE b (id bigserial PRIMARY KEY, a_id bigint REFERENCES a(id));
CREATE TABLE c (id int);
"""


def dirty(conn: psycopg.Connection) -> set[str]:  # type: ignore[type-arg]
    rows = conn.execute("SELECT DISTINCT relid::regclass::text FROM testbed.dirty").fetchall()
    return {r[0] for r in rows}


def test_writes_from_any_connection_count_reads_and_rollbacks_do_not(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "001.sql").write_text(SCHEMA)
    with postgres(migrations="m", root=tmp_path) as pg, psycopg.connect(pg.url, autocommit=True) as app:
        app.execute("SELECT * FROM a JOIN b ON b.a_id = a.id")
        assert dirty(app) == set()
        with app.transaction(force_rollback=True):
            app.execute("INSERT INTO c VALUES (1)")
        assert dirty(app) == set(), "a rolled-back write leaves no mark"
        with psycopg.connect(pg.url) as other:
            other.execute("INSERT INTO a (v) VALUES ('x'), ('y')")  # one statement, one mark
            other.execute("UPDATE a SET v = 'z'")
        app.execute("DELETE FROM c")
        assert dirty(app) == {"a", "c"}
        # reset: b references a, so it is truncated with it; ids restart
        truncated = app.execute("SELECT testbed.reset()").fetchone()[0]
        assert set(truncated) == {"a", "b", "c"}
        assert dirty(app) == set()
        assert app.execute("INSERT INTO a (v) VALUES ('n') RETURNING id").fetchone() == (1,)
        app.execute("SELECT testbed.reset()")


def test_seed_tables_limits_what_is_reloaded(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "001.sql").write_text(
        "CREATE TABLE plans (code text PRIMARY KEY);\nINSERT INTO plans VALUES ('free'), ('pro');\n"
        "CREATE TABLE flags (name text PRIMARY KEY);\nINSERT INTO flags VALUES ('beta');\n"
    )
    with postgres(migrations="m", root=tmp_path, seed_tables=("plans",)) as pg, \
            psycopg.connect(pg.url, autocommit=True) as app:
        app.execute("DELETE FROM plans")
        app.execute("DELETE FROM flags")
        app.execute("SELECT testbed.reset()")
        assert app.execute("SELECT count(*) FROM plans").fetchone() == (2,)  # listed: reloaded
        assert app.execute("SELECT count(*) FROM flags").fetchone() == (0,)  # not listed: emptied
