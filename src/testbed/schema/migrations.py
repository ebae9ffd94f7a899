"""Migrations: a folder of .sql files, Alembic, or a Python callable; their content hash; applying them.

The hash is what keys the cached template cluster: change one byte of one migration and the next run
rebuilds the template by itself.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import psycopg

from testbed.errors import ConfigError, MigrationError
from testbed.schema.timeout import APPLICATION_NAME

# Set while Alembic or a migration function runs: the (SQLAlchemy) URL of the database to migrate.
URL_ENV = "TESTBED_DATABASE_URL"


class MigrationSource(Protocol):
    """Something that can fill an empty database with the project's schema."""

    @property
    def description(self) -> str: ...

    def content_hash(self) -> str: ...

    def apply(self, url: str, conninfo: dict[str, Any]) -> None: ...


def _natural_key(path: Path) -> list[Any]:
    # 2_x.sql before 10_x.sql
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.as_posix())]


def _skip_leading(sql: str, start: int, end: int) -> int:
    """The offset of the first character after whitespace and comments in sql[start:end]."""
    i = start
    while i < end:
        if sql[i].isspace():
            i += 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            i = end if j < 0 else j + 1
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = end if j < 0 else j + 2
        else:
            break
    return i


def split_statements(sql: str) -> list[tuple[int, str]]:
    """Split SQL into statements with their start offsets, respecting quotes, $$ bodies and comments."""
    out: list[tuple[int, str]] = []
    i, start, n = 0, 0, len(sql)
    while i < n:
        c = sql[i]
        if c == "-" and sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
        elif c == "/" and sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif c in ("'", '"'):
            j = i + 1
            while j < n:
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:  # doubled quote escapes itself
                        j += 2
                        continue
                    break
                j += 1
            i = j + 1
        elif c == "$":
            m = re.match(r"\$[A-Za-z_]*\$", sql[i:])
            if m:
                tag = m.group(0)
                j = sql.find(tag, i + len(tag))
                i = n if j < 0 else j + len(tag)
            else:
                i += 1
        elif c == ";":
            first = _skip_leading(sql, start, i)
            if first < i:
                out.append((first, sql[first:i].strip()))
            i += 1
            start = i
        else:
            i += 1
    first = _skip_leading(sql, start, n)
    if first < n:
        out.append((first, sql[first:].strip()))
    return out


def line_of(text: str, offset: int) -> int:
    """1-based line number of ``offset`` in ``text``."""
    return text.count("\n", 0, offset) + 1


def content_key(template_format: str, source: MigrationSource, seed_tables: tuple[str, ...] | None = None) -> str:
    """The cache key of a migrated template: how the engine builds it, the migrations' hash, the seed tables."""
    seeds = ",".join(seed_tables) if seed_tables is not None else "*"
    h = hashlib.sha256(f"{template_format}\0{source.content_hash()}\0{seeds}".encode())
    return h.hexdigest()[:24]


@dataclass(frozen=True)
class SqlFolder:
    """Every *.sql file in a folder (recursively), applied in natural name order."""

    folder: Path

    @property
    def description(self) -> str:
        return f"SQL files in {self.folder}"

    def files(self) -> list[Path]:
        if not self.folder.is_dir():
            raise ConfigError(
                f"migrations folder {self.folder} does not exist. Fix [tool.testbed.postgres] migrations "
                "(a folder of .sql files, 'alembic', or 'pkg.module:function')."
            )
        return sorted(self.folder.rglob("*.sql"), key=lambda p: _natural_key(p.relative_to(self.folder)))

    def content_hash(self) -> str:
        h = hashlib.sha256(b"sql-folder\0")
        for f in self.files():
            h.update(f.relative_to(self.folder).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
        return h.hexdigest()

    def apply(self, url: str, conninfo: dict[str, Any]) -> None:
        with psycopg.connect(**conninfo, autocommit=True, application_name=APPLICATION_NAME) as conn:
            for f in self.files():
                sql = f.read_text(encoding="utf-8")
                try:
                    # One simple query per file: one implicit transaction, so a failing file leaves nothing.
                    conn.execute(sql.encode())  # bytes: no client-side placeholder parsing of '%'
                except psycopg.Error as exc:
                    raise self._explain(conn, f, sql, exc) from None

    def _explain(self, conn: psycopg.Connection[Any], f: Path, sql: str, exc: psycopg.Error) -> MigrationError:
        pos = exc.diag.statement_position
        failing: tuple[int, str] | None = None
        statements = split_statements(sql)
        if pos:
            offset = int(pos) - 1
            for start, stmt in statements:
                if start <= offset:
                    failing = (start, stmt)
        else:
            # No position (e.g. a constraint violation): replay statement by statement in a transaction
            # that is rolled back, to name the one that fails.
            try:
                with conn.transaction(force_rollback=True):
                    # Bounded: a statement that waits (a lock, pg_sleep) must not hang the replay.
                    conn.execute("SET LOCAL statement_timeout = '2s'")
                    conn.execute("SET LOCAL lock_timeout = '2s'")
                    for start, stmt in statements:
                        try:
                            with conn.transaction():
                                conn.execute(stmt.encode())
                        except psycopg.Error:
                            failing = (start, stmt)
                            break
            except psycopg.Error:
                pass
        where = f"{f}"
        statement = ""
        if failing is not None:
            line = line_of(sql, failing[0])
            where = f"{f}:{line}"
            statement = "\n  statement: " + failing[1][:500].replace("\n", "\n             ")
        msg = (exc.diag.message_primary or str(exc)).strip()
        detail = f"\n  detail: {exc.diag.message_detail}" if exc.diag.message_detail else ""
        return MigrationError(
            f"migration {where} failed: PostgreSQL said: {msg}{detail}{statement}",
            boundary="postgres migrations",
        )


@dataclass(frozen=True)
class AlembicMigrations:
    """`alembic upgrade head` using the project's alembic.ini, pointed at the template database."""

    ini: Path

    @property
    def description(self) -> str:
        return f"Alembic ({self.ini})"

    def _script_location(self) -> Path:
        import configparser

        parser = configparser.ConfigParser(defaults={"here": str(self.ini.parent)})
        parser.read(self.ini)
        raw = parser.get("alembic", "script_location", fallback="alembic")
        raw = raw.replace("%(here)s", str(self.ini.parent))
        p = Path(raw)
        return p if p.is_absolute() else self.ini.parent / p

    def content_hash(self) -> str:
        if not self.ini.is_file():
            raise ConfigError(f"migrations = 'alembic' but {self.ini} does not exist.")
        h = hashlib.sha256(b"alembic\0" + self.ini.read_bytes())
        loc = self._script_location()
        for f in sorted(p for p in loc.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            h.update(f.relative_to(loc).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
        return h.hexdigest()

    def apply(self, url: str, conninfo: dict[str, Any]) -> None:
        from testbed.schema import alembic_upgrade

        alembic_upgrade.upgrade(self.ini, self._script_location(),
                                url.replace("postgresql://", "postgresql+psycopg://", 1), "postgres migrations")
        with psycopg.connect(**conninfo, autocommit=True) as conn:
            # The version table: alembic_version, or a one-column table of version_num (version_table=...).
            tables = conn.execute(
                "SELECT format('%I.%I', table_schema, table_name) FROM information_schema.columns "
                "WHERE column_name = 'version_num' AND table_schema NOT IN ('pg_catalog', 'information_schema') "
                "GROUP BY table_schema, table_name ORDER BY (table_name = 'alembic_version') DESC"
            ).fetchall()
            found: set[str] = set()
            for (table,) in tables:
                found |= {str(r[0]) for r in conn.execute(f"SELECT version_num FROM {table}").fetchall()}
        self.check_at_head(found, "postgres")

    def check_at_head(self, found: set[str], engine: str, boundary: str = "") -> None:
        """After the upgrade the template must record the head revisions (``found``: those in its version
        table); else env.py migrated another database, and an empty template must not be cached. ``engine``
        names the [tool.testbed.env] references in the hint."""
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        cfg = Config(str(self.ini))
        cfg.set_main_option("script_location", str(self._script_location()))
        heads = set(ScriptDirectory.from_config(cfg).get_heads())
        if heads <= found:
            return  # at head (or no revisions at all: nothing to check)
        env_py = self._script_location() / "env.py"
        where = f"is at {', '.join(sorted(found))}" if found else "has no alembic_version table"
        raise MigrationError(
            f"alembic upgrade head reported success, but the template database testbed handed it {where}, "
            f"not at head ({', '.join(sorted(heads))}): {env_py} connected to another database, probably the "
            "one your application's settings name. Check that database: these migrations may have run "
            "there. If env.py reads the URL from your app's settings, hand them over in [tool.testbed.env] "
            f"(e.g. DATABASE_URL = \"{{{engine}.sqlalchemy_url}}\"): while migrating, those variables name the "
            "template. Or make env.py use the URL testbed passes: `url = context.config.get_main_option("
            f"\"sqlalchemy.url\")` (or os.environ[\"{URL_ENV}\"], which testbed sets while it migrates) "
            "instead of building one from the app's settings, e.g.\n"
            "    url = os.environ.get(\"TESTBED_DATABASE_URL\") or settings.SQLALCHEMY_DATABASE_URI",
            boundary=boundary or f"{engine} migrations",
        )


@dataclass(frozen=True)
class CallableMigrations:
    """A function ``pkg.module:function(url)`` that migrates the database at ``url``."""

    target: str

    @property
    def description(self) -> str:
        return f"callable {self.target}"

    def _resolve(self) -> Any:
        module_name, _, attr = self.target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(f"migrations = {self.target!r}: cannot import {module_name}: {exc}") from exc
        fn = getattr(module, attr, None)
        if not callable(fn):
            raise ConfigError(f"migrations = {self.target!r}: {module_name} has no callable {attr!r}.")
        return fn

    def content_hash(self) -> str:
        fn = self._resolve()
        # The module's source is the key; a function may add `testbed_cache_key` for what it reads.
        source = inspect.getsource(inspect.getmodule(fn))  # type: ignore[arg-type]
        extra = str(getattr(fn, "testbed_cache_key", ""))
        return hashlib.sha256(f"callable\0{self.target}\0{source}\0{extra}".encode()).hexdigest()

    def apply(self, url: str, conninfo: dict[str, Any]) -> None:
        fn = self._resolve()
        try:
            fn(url)
        except Exception as exc:
            raise MigrationError(
                f"migration function {self.target} failed: {type(exc).__name__}: {exc}",
                boundary="postgres migrations",
            ) from exc


@dataclass(frozen=True)
class NoMigrations:
    description: str = "no migrations"

    def content_hash(self) -> str:
        return hashlib.sha256(b"none").hexdigest()

    def apply(self, url: str, conninfo: dict[str, Any]) -> None:
        return None


def migration_source(spec: str | None, root: Path, engine: str = "postgres") -> MigrationSource:
    """Interpret a migrations setting: a folder, 'alembic[:path/to/alembic.ini]', 'django', or 'pkg.mod:fn'."""
    if not spec:
        return NoMigrations()
    if spec == "django":
        from testbed.schema.django import DjangoMigrations

        return DjangoMigrations(engine)
    if spec == "alembic" or spec.startswith("alembic:"):
        ini = spec.partition(":")[2] or "alembic.ini"
        p = Path(ini)
        return AlembicMigrations(p if p.is_absolute() else root / p)
    if ":" in spec and not Path(spec).exists() and re.fullmatch(r"[\w.]+:\w+", spec):
        return CallableMigrations(spec)
    p = Path(spec)
    return SqlFolder(p if p.is_absolute() else root / p)
