"""Starting PostgreSQL with the project's migrations: the library API behind the pytest fixtures.

    with testbed.postgres(version="16", migrations="migrations/") as pg:
        engine = create_engine(pg.url)

Usable without pytest; the plugin calls the same functions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from testbed.config import ServiceSettings
from testbed.errors import ConfigError, MigrationError
from testbed.isolation.worker import WorkerDatabase
from testbed.schema.migrations import migration_source
from testbed.schema.template import content_key, install_bookkeeping
from testbed.services.postgres import TEMPLATE_DB, PostgresEndpoint, PostgresServer


def start_postgres(settings: ServiceSettings, root: Path) -> PostgresServer:
    """Start a server whose template database holds the migrated schema (from cache when unchanged)."""
    if settings.runner != "local":
        raise ConfigError(
            f"[tool.testbed.postgres] runner = {settings.runner!r} is not available yet; only 'local' (a server "
            "process testbed starts from a real binary) is. Remove `runner` to use it."
        )
    source = migration_source(settings.migrations, root)
    key = content_key(source)

    def build(server: PostgresServer) -> None:
        try:
            source.apply(server.url(TEMPLATE_DB), server.socket_conninfo(TEMPLATE_DB))
        except MigrationError as exc:
            raise MigrationError(
                f"{exc.args[0]}\nPostgreSQL's last log lines:\n{server.log_tail(10)}", boundary=exc.boundary
            ) from None
        install_bookkeeping(server.socket_conninfo(TEMPLATE_DB))

    server = PostgresServer(settings)
    try:
        return server.start(content_key=key, build_template=build)
    except BaseException:
        server.stop()
        raise


class RunningPostgres:
    """A started server plus one database cloned from the template, ready for an application."""

    def __init__(self, server: PostgresServer, database: WorkerDatabase) -> None:
        self.server = server
        self.endpoint = PostgresEndpoint.of(server)
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
        database = WorkerDatabase(PostgresEndpoint.of(server), "main")
        yield RunningPostgres(server, database)
    finally:
        if database is not None:
            database.close()
        server.stop()
