"""Applying migrations to a MariaDB/MySQL template database.

MySQL runs one statement per call (no multi-statement simple query like PostgreSQL's), so a .sql file is
split here and run statement by statement; a failure names file:line, the statement and the server's
message. The MySQL lexer differs from PostgreSQL's (backslash escapes in strings, backtick identifiers,
``#`` comments, ``DELIMITER`` lines of mysql-client scripts for triggers and procedures), hence a splitter
of its own; the folder walk and the content hash are SqlFolder's.

MySQL commits DDL implicitly: a file that fails half-way leaves its earlier statements applied. That only
touches the template being built, which is then discarded (nothing is cached after a failure).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from pathlib import Path
from typing import Any

import pymysql

from testbed.errors import ConfigError, MigrationError
from testbed.schema.migrations import (
    AlembicMigrations,
    CallableMigrations,
    MigrationSource,
    NoMigrations,
    SqlFolder,
    migration_source,
)

# Bumped when what the template build does besides the user's migrations changes.
TEMPLATE_FORMAT = "mysql-template-1"
_DELIMITER = re.compile(r"[ \t]*delimiter[ \t]+(\S+)[ \t]*(?:\r?\n|$)", re.IGNORECASE)


def split_mysql(sql: str) -> list[tuple[int, str]]:
    """Split a MySQL script into (start offset, statement), honouring quotes, comments and DELIMITER."""
    out: list[tuple[int, str]] = []
    delimiter = ";"
    i, n = 0, len(sql)
    start: int | None = None  # offset of the current statement's first significant character
    while i < n:
        at_line_start = i == 0 or sql[i - 1] == "\n"
        if start is None:
            if at_line_start or sql[:i].strip() == "":
                m = _DELIMITER.match(sql, i)
                if m:
                    delimiter = m.group(1)
                    i = m.end()
                    continue
            c = sql[i]
            if c.isspace():
                i += 1
                continue
        c = sql[i]
        if (c == "-" and sql.startswith("--", i) and (i + 2 >= n or sql[i + 2] in " \t\r\n")) or c == "#":
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if c == "/" and sql.startswith("/*", i) and not sql.startswith("/*!", i) and not sql.startswith("/*M!", i):
            j = sql.find("*/", i + 2)
            i = n if j < 0 else j + 2
            continue
        if start is None:
            start = i
        if c in ("'", '"', "`"):
            j = i + 1
            while j < n:
                if sql[j] == "\\" and c != "`":
                    j += 2
                    continue
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:  # doubled quote escapes itself
                        j += 2
                        continue
                    break
                j += 1
            i = j + 1
        elif sql.startswith(delimiter, i):
            stmt = sql[start:i].strip()
            if stmt:
                out.append((start, stmt))
            i += len(delimiter)
            start = None
        else:
            i += 1
    if start is not None:
        tail = sql[start:].strip()
        if tail:
            out.append((start, tail))
    return out


def line_of(text: str, offset: int) -> int:
    """1-based line number of ``offset`` in ``text``."""
    return text.count("\n", 0, offset) + 1


def apply_sql_file(conn: pymysql.connections.Connection[Any], path: Path, *, flavor: str = "MariaDB") -> int:
    """Run every statement of one .sql file; MigrationError naming file:line, statement and message."""
    sql = path.read_text(encoding="utf-8")
    count = 0
    with conn.cursor() as cur:
        for start, stmt in split_mysql(sql):
            try:
                # args=None: PyMySQL does no %-interpolation, so '%' in the SQL is sent as written.
                cur.execute(stmt)
                while cur.nextset():  # a CALL may return several result sets
                    pass
            except pymysql.err.MySQLError as exc:
                code, message = (exc.args + ("", ""))[:2] if exc.args else ("", str(exc))
                shown = stmt[:500].replace("\n", "\n             ")
                raise MigrationError(
                    f"migration {path}:{line_of(sql, start)} failed: {flavor} said: ({code}) {message}\n"
                    f"  statement: {shown}\n"
                    f"  Note: {flavor} commits DDL implicitly, so the statements before this one in the file were "
                    "applied; testbed discards this template and rebuilds it on the next run.",
                    boundary=f"{flavor} migrations",
                ) from None
            count += 1
    return count


def apply_migrations(
    source: MigrationSource, conn_kwargs: dict[str, Any], url: str, *, flavor: str = "MariaDB"
) -> None:
    """Fill the template database (``conn_kwargs`` selects it) from ``source``; ``url`` is its TCP URL."""
    if isinstance(source, NoMigrations):
        return
    if isinstance(source, SqlFolder):
        files = source.files()
        with contextlib.closing(pymysql.connect(**conn_kwargs, autocommit=True)) as conn:
            for f in files:
                apply_sql_file(conn, f, flavor=flavor)
        return
    if isinstance(source, AlembicMigrations):
        _apply_alembic(source, url, flavor)
        return
    if isinstance(source, CallableMigrations):
        try:
            source.apply(url, conn_kwargs)
        except MigrationError as exc:
            raise MigrationError(str(exc).split("] ", 1)[-1], boundary=f"{flavor} migrations") from None
        return
    raise ConfigError(f"migrations: {source.description} is not supported for {flavor}.")


def _apply_alembic(source: AlembicMigrations, url: str, flavor: str) -> None:
    try:
        from alembic import command
        from alembic.config import Config
    except ImportError:
        raise ConfigError("migrations = 'alembic' needs Alembic: pip install 'pytest-testbed[alembic]'.") from None
    cfg = Config(str(source.ini))
    cfg.set_main_option("script_location", str(source._script_location()))
    cfg.set_main_option("sqlalchemy.url", url.replace("mysql://", "mysql+pymysql://", 1).replace("%", "%%"))
    try:
        command.upgrade(cfg, "head")
    except Exception as exc:
        raise MigrationError(
            f"alembic upgrade head failed ({source.ini}): {type(exc).__name__}: {exc}",
            boundary=f"{flavor} migrations",
        ) from exc


def content_key(source: MigrationSource, seed_tables: tuple[str, ...] | None = None) -> str:
    """The cache key of a migrated data folder: the migrations' hash plus how testbed builds the template."""
    h = hashlib.sha256(f"{TEMPLATE_FORMAT}\0{source.content_hash()}\0{seed_tables!r}".encode())
    return h.hexdigest()[:24]


__all__ = ["apply_migrations", "apply_sql_file", "content_key", "migration_source", "split_mysql"]
