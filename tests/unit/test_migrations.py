from __future__ import annotations

from pathlib import Path

from testbed.schema.migrations import (
    AlembicMigrations,
    CallableMigrations,
    NoMigrations,
    SqlFolder,
    migration_source,
    split_statements,
)


def test_split_respects_quotes_dollar_bodies_and_comments() -> None:
    sql = (
        "-- header; not a statement\n"
        "CREATE TABLE a (x text DEFAULT 'a;b');\n"
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;\n"
        "/* block; comment */ INSERT INTO a VALUES ('it''s; fine');\n"
        "SELECT 1"
    )
    statements = [s for _, s in split_statements(sql)]
    assert statements == [
        "CREATE TABLE a (x text DEFAULT 'a;b')",
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$",
        "INSERT INTO a VALUES ('it''s; fine')",
        "SELECT 1",
    ]


def test_split_offsets_point_at_statement_start() -> None:
    sql = "SELECT 1;\n\n-- why\nSELECT 2;"
    (o1, _), (o2, s2) = split_statements(sql)
    assert o1 == 0
    assert sql[o2:].startswith("SELECT 2") and s2 == "SELECT 2"


def test_sql_folder_hash_changes_with_content_and_orders_naturally(tmp_path: Path) -> None:
    (tmp_path / "10_b.sql").write_text("SELECT 10;")
    (tmp_path / "2_a.sql").write_text("SELECT 2;")
    folder = SqlFolder(tmp_path)
    assert [p.name for p in folder.files()] == ["2_a.sql", "10_b.sql"]
    before = folder.content_hash()
    (tmp_path / "2_a.sql").write_text("SELECT 3;")
    assert folder.content_hash() != before


def test_migration_source_kinds(tmp_path: Path) -> None:
    assert isinstance(migration_source(None, tmp_path), NoMigrations)
    assert isinstance(migration_source("migrations/", tmp_path), SqlFolder)
    assert migration_source("alembic", tmp_path) == AlembicMigrations(tmp_path / "alembic.ini")
    assert isinstance(migration_source("myapp.db:migrate", tmp_path), CallableMigrations)
