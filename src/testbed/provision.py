"""Starting PostgreSQL with the project's migrations: the library API behind the pytest fixtures.

    with testbed.postgres(version="16", migrations="migrations/") as pg:
        engine = create_engine(pg.url)

Usable without pytest; the plugin calls the same functions.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from testbed.config import ServiceSettings
from testbed.errors import ConfigError, MigrationError, TestbedError
from testbed.isolation.worker import WorkerDatabase
from testbed.schema.migrations import migration_source
from testbed.schema.template import content_key, install_bookkeeping
from testbed.schema.timeout import run_with_timeout
from testbed.services.postgres import TEMPLATE_DB, ExistingPostgres, PostgresServer


def start_postgres(settings: ServiceSettings, root: Path) -> PostgresServer | ExistingPostgres:
    """Start a server whose template database holds the migrated schema (from cache when unchanged).

    With runner = "existing", use the server at ``url`` instead: the template is built there once per
    migrations hash and kept for the next run.
    """
    if settings.runner == "existing":
        return prepare_existing(settings, root)
    if settings.runner != "local":
        raise ConfigError(
            f"[tool.testbed.postgres] runner = {settings.runner!r} is not available yet; use 'local' (a server "
            "process testbed starts from a real binary) or 'existing' (url = ...)."
        )
    source = migration_source(settings.migrations, root)
    key = content_key(source, settings.seed_tables)

    def build(server: PostgresServer) -> None:
        conninfo = server.socket_conninfo(TEMPLATE_DB)
        try:
            run_with_timeout(lambda: source.apply(server.url(TEMPLATE_DB), conninfo),
                             timeout=settings.migration_timeout, conninfo=conninfo, what=source.description)
        except MigrationError as exc:
            raise MigrationError(
                f"{exc.args[0]}\nPostgreSQL's last log lines:\n{server.log_tail(10)}", boundary=exc.boundary
            ) from None
        install_bookkeeping(server.socket_conninfo(TEMPLATE_DB), settings.seed_tables)

    server = PostgresServer(settings)
    try:
        return server.start(content_key=key, build_template=build)
    except BaseException:
        server.stop()
        raise


def prepare_existing(settings: ServiceSettings, root: Path) -> ExistingPostgres:
    """Build (or reuse) the migrated template on an existing server; clean a killed run's databases."""
    server = ExistingPostgres(settings)
    server.check()
    source = migration_source(settings.migrations, root)
    key = content_key(source, settings.seed_tables)
    name = f"testbed_tpl_{key[:20]}"
    lock = int(key[:15], 16)
    with server.connect(autocommit=True) as admin:
        _reap_existing(server, admin)
        admin.execute("SELECT pg_advisory_lock(%s)", (lock,))  # concurrent runs build a template once
        try:
            if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                server.cache_hit = True
            else:
                building = f"{name}_b{os.getpid()}"
                admin.execute(f'DROP DATABASE IF EXISTS "{building}"')
                admin.execute(f'CREATE DATABASE "{building}" TEMPLATE template0')
                endpoint = server.endpoint()
                try:
                    conninfo = endpoint.conninfo(building)
                    run_with_timeout(lambda: source.apply(endpoint.url(building), conninfo),
                                     timeout=settings.migration_timeout, conninfo=conninfo,
                                     what=source.description)
                    install_bookkeeping(endpoint.conninfo(building), settings.seed_tables)
                except BaseException:
                    admin.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
                    raise
                admin.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
                admin.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE true')
        finally:
            admin.execute("SELECT pg_advisory_unlock(%s)", (lock,))
    server.template = name
    return server


def _reap_existing(server: ExistingPostgres, admin: Any) -> list[str]:
    """Drop the per-run databases of runs that are provably gone; returns a line per database dropped.

    A database is dropped only when it carries testbed's marker and an owner row, and the owner's liveness
    lock can be taken (the owning session is gone, on whatever host or PID namespace it ran). Anything
    else named like testbed's, a user's database included, is left alone.
    """
    from testbed.schema.template import read_owner

    dropped: list[str] = []
    rows = admin.execute(r"SELECT datname FROM pg_database WHERE datname LIKE 'testbed\_r%' AND datallowconn "
                         "ORDER BY datname").fetchall()
    for (datname,) in rows:
        if datname.startswith(server.db_prefix + "_"):
            continue
        try:
            with server.connect(datname, autocommit=True) as conn:
                owner = read_owner(conn)
        except TestbedError:
            continue  # gone meanwhile, or not ours to enter
        if owner is None:
            continue
        got = admin.execute("SELECT pg_try_advisory_lock(%s, %s)", (owner.lock_class, owner.lock_key)).fetchone()
        if not got or not got[0]:
            continue  # its run is alive
        try:
            admin.execute(f'DROP DATABASE IF EXISTS "{datname}" WITH (FORCE)')
            dropped.append(f"dropped {datname} left by {owner.describe()}")
        finally:
            admin.execute("SELECT pg_advisory_unlock(%s, %s)", (owner.lock_class, owner.lock_key))
    return dropped


class RunningPostgres:
    """A started server plus one database cloned from the template, ready for an application."""

    def __init__(self, server: PostgresServer | ExistingPostgres, database: WorkerDatabase) -> None:
        self.server = server
        self.endpoint = server.endpoint()
        self.database = database

    @property
    def url(self) -> str:
        """URL of a database cloned from the migrated template (loopback TCP, generated password)."""
        return self.database.url

    @property
    def sqlalchemy_url(self) -> str:
        return self.url.replace("postgresql://", "postgresql+psycopg://", 1)

    @property
    def version(self) -> str:
        return self.endpoint.version

    @property
    def binary(self) -> str:
        return self.endpoint.binary

    def connect(self, **kwargs: Any) -> Any:
        """A new psycopg connection to the database (unix socket)."""
        return self.endpoint.connect(self.database.dbname, **kwargs)


@contextlib.contextmanager
def postgres(
    version: str | None = None,
    migrations: str | None = None,
    *,
    root: str | Path = ".",
    **options: Any,
) -> Iterator[RunningPostgres]:
    """Run a real PostgreSQL for the duration of the block; its ``url`` points at a migrated database."""
    settings = replace(ServiceSettings(engine="postgres"), version=version, migrations=migrations, **options)
    server = start_postgres(settings, Path(root).resolve())
    database: WorkerDatabase | None = None
    try:
        database = WorkerDatabase(server.endpoint(), "main")
        yield RunningPostgres(server, database)
    finally:
        if database is not None:
            database.close()
        server.stop()
