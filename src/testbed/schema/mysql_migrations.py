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
import re
from pathlib import Path
from typing import Any

import pymysql

from testbed.errors import ConfigError, MigrationError
from testbed.schema import migrations
from testbed.schema.migrations import (
    AlembicMigrations,
    CallableMigrations,
    MigrationSource,
    NoMigrations,
    SqlFolder,
    line_of,
    migration_source,
)
from testbed.schema.timeout import run_with_timeout

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
    source: MigrationSource, conn_kwargs: dict[str, Any], url: str, *, flavor: str = "MariaDB",
    timeout: float = 120.0,
) -> None:
    """Fill the template database (``conn_kwargs`` selects it) from ``source``; ``url`` is its TCP URL.

    A migration still running after ``timeout`` seconds is killed and named, with what it waited for.
    """
    if isinstance(source, NoMigrations):
        return
    dbname = str(conn_kwargs.get("database", ""))
    admin_kwargs = {k: v for k, v in conn_kwargs.items() if k != "database"}
    run_with_timeout(lambda: _apply(source, conn_kwargs, url, flavor), timeout=timeout,
                     inspect=lambda: inspect_and_kill(admin_kwargs, dbname), what=source.description,
                     engine="mysql")


# Sessions on the template database: what each runs and waits for, and which open transactions may block it.
_PROCESSLIST_SQL = (
    "SELECT ID, COALESCE(STATE, ''), COALESCE(LEFT(INFO, 500), ''), TIME FROM information_schema.PROCESSLIST "
    "WHERE DB = %s AND ID <> CONNECTION_ID() AND COMMAND <> 'Sleep'"
)
_OPEN_TRANSACTIONS_SQL = (
    "SELECT p.ID, COALESCE(p.DB, ''), p.COMMAND, COALESCE(LEFT(t.trx_query, 200), '') "
    "FROM information_schema.INNODB_TRX t JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id "
    "WHERE p.ID <> %s"
)


def inspect_and_kill(admin_kwargs: dict[str, Any], dbname: str) -> str:
    """What the migration's statements on ``dbname`` wait for; those statements are then killed."""
    try:
        with contextlib.closing(pymysql.connect(**admin_kwargs, autocommit=True, connect_timeout=5)) as conn, \
                conn.cursor() as cur:
            cur.execute(_PROCESSLIST_SQL, (dbname,))
            running = list(cur.fetchall())
            lines = []
            for conn_id, state, info, seconds in running:
                lines.append(f"  connection {conn_id}, {seconds} s, state: {state or '(none)'}")
                lines.append(f"    statement: {' '.join(str(info).split())[:300]}")
                cur.execute(_OPEN_TRANSACTIONS_SQL, (conn_id,))
                lines.extend(f"    open transaction elsewhere: connection {b} on {db or '(no database)'} "
                             f"({cmd}){': ' + q if q else ''}" for b, db, cmd, q in cur.fetchall())
            for conn_id, *_rest in running:
                cur.execute(f"KILL QUERY {int(conn_id)}")
    except pymysql.err.MySQLError as exc:
        return f"(could not ask the server what it waits for: {exc})"
    if not lines:
        return "No statement of the migration is running on the database: it waits outside it (in Python)."
    return "\n".join(lines)


def _apply(source: MigrationSource, conn_kwargs: dict[str, Any], url: str, flavor: str) -> None:
    if isinstance(source, SqlFolder):
        files = source.files()
        with contextlib.closing(pymysql.connect(**conn_kwargs, autocommit=True)) as conn:
            for f in files:
                apply_sql_file(conn, f, flavor=flavor)
        return
    if isinstance(source, AlembicMigrations):
        _apply_alembic(source, url, conn_kwargs, flavor)
        return
    from testbed.schema.django import DjangoMigrations

    if isinstance(source, DjangoMigrations):
        source.apply(url, {"dbname": conn_kwargs.get("database", ""), "user": conn_kwargs.get("user", ""),
                           "password": conn_kwargs.get("password", ""),
                           "host": conn_kwargs.get("unix_socket") or conn_kwargs.get("host", ""),
                           "port": conn_kwargs.get("port", "")})
        return
    if isinstance(source, CallableMigrations):
        try:
            source.apply(url, conn_kwargs)
        except MigrationError as exc:
            raise MigrationError(str(exc).split("] ", 1)[-1], boundary=f"{flavor} migrations") from None
        return
    raise ConfigError(f"migrations: {source.description} is not supported for {flavor}.")


def _apply_alembic(source: AlembicMigrations, url: str, conn_kwargs: dict[str, Any], flavor: str) -> None:
    from testbed.schema import alembic_upgrade

    alembic_upgrade.upgrade(source.ini, source._script_location(),
                            url.replace("mysql://", "mysql+pymysql://", 1), f"{flavor} migrations")
    found: set[str] = set()
    with contextlib.closing(pymysql.connect(**conn_kwargs, autocommit=True)) as conn, conn.cursor() as cur:
        # The version table: alembic_version, or a table of version_num (version_table=...) in the template.
        cur.execute("SELECT TABLE_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
                    "AND COLUMN_NAME = 'version_num' GROUP BY TABLE_NAME")
        for (table,) in list(cur.fetchall()):
            cur.execute(f"SELECT version_num FROM `{table}`")
            found |= {str(r[0]) for r in cur.fetchall()}
    source.check_at_head(found, "mysql", f"{flavor} migrations")


def content_key(source: MigrationSource, seed_tables: tuple[str, ...] | None = None) -> str:
    """The cache key of a migrated data folder: the migrations' hash plus how testbed builds the template."""
    return migrations.content_key(TEMPLATE_FORMAT, source, seed_tables)


__all__ = ["apply_migrations", "apply_sql_file", "content_key", "migration_source", "split_mysql"]
