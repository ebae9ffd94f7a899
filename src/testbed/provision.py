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
from testbed.errors import ConfigError, MigrationError
from testbed.isolation.worker import WorkerDatabase
from testbed.schema.migrations import migration_source
from testbed.schema.template import content_key, install_bookkeeping
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
        try:
            source.apply(server.url(TEMPLATE_DB), server.socket_conninfo(TEMPLATE_DB))
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
        _reap_existing(admin)
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
                    source.apply(endpoint.url(building), endpoint.conninfo(building))
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


def _reap_existing(admin: Any) -> None:
    # Worker databases are testbed_r<owner pid>_...: drop those whose owner on this machine is gone.
    from testbed.runners.reaper import process_start_time

    rows = admin.execute(r"SELECT datname FROM pg_database WHERE datname LIKE 'testbed\_r%'").fetchall()
    for (datname,) in rows:
        pid = datname[len("testbed_r"):].split("_", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and process_start_time(int(pid)) is None:
            admin.execute(f'DROP DATABASE IF EXISTS "{datname}" WITH (FORCE)')


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
