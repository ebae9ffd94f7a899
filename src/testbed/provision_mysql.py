"""Starting MariaDB/MySQL with the project's migrations: the library API behind the pytest fixtures.

    from testbed.services import mysql
    with mysql.running(ServiceSettings(engine="mysql", migrations="migrations/")) as m:
        conn = pymysql.connect(**m.connect_kwargs())   # or any client with m.url

Usable without pytest; the plugin calls the same functions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from testbed.config import ServiceSettings
from testbed.errors import ConfigError, MigrationError
from testbed.isolation.mysql import MysqlWorkerDatabase
from testbed.schema.mysql_migrations import apply_migrations, content_key, migration_source
from testbed.services.mysql import TEMPLATE_DB, ExistingMysqlServer, MysqlEndpoint, MysqlServer


def start_mysql(settings: ServiceSettings, root: Path | None = None) -> MysqlServer | ExistingMysqlServer:
    """Start a server whose template database holds the migrated schema (from cache when unchanged)."""
    source = migration_source(settings.migrations, root or Path.cwd())
    key = content_key(source)

    def build(server: MysqlServer | ExistingMysqlServer) -> None:
        try:
            apply_migrations(source, server.socket_kwargs(TEMPLATE_DB), server.url(TEMPLATE_DB),
                             flavor=server.flavor)
        except MigrationError as exc:
            raise MigrationError(
                f"{str(exc).split('] ', 1)[-1]}\n{server.flavor}'s last log lines:\n{server.log_tail(10)}",
                boundary=exc.boundary,
            ) from None

    if settings.runner == "existing":
        return ExistingMysqlServer(settings).start(content_key=key, build_template=build)
    if settings.runner != "local":
        raise ConfigError(
            f"[tool.testbed.mysql] runner = {settings.runner!r} is not supported for MariaDB/MySQL yet: use "
            "'local' (a server from the system's binary) or 'existing' with url = 'mysql://...'."
        )
    server = MysqlServer(settings)
    try:
        return server.start(content_key=key, build_template=build)
    except BaseException:
        server.stop()
        raise


class RunningMysql:
    """A started server plus one database copied from the migrated template, ready for an application."""

    def __init__(self, server: MysqlServer | ExistingMysqlServer, database: MysqlWorkerDatabase) -> None:
        self.server = server
        self.endpoint = MysqlEndpoint.of(server)
        self.database = database

    @property
    def url(self) -> str:
        """``mysql://root:<password>@127.0.0.1:<port>/testbed_main`` (loopback TCP, generated password)."""
        return self.database.url()

    @property
    def dbname(self) -> str:
        return self.database.dbname

    def connect_kwargs(self) -> dict[str, Any]:
        """pymysql.connect keyword arguments for the database over the private unix socket."""
        return self.endpoint.connect_kwargs(self.dbname)

    def connect(self, **kwargs: Any) -> Any:
        """A PyMySQL connection to the database."""
        return self.endpoint.connect(self.dbname, **kwargs)


@contextlib.contextmanager
def running(settings: ServiceSettings | None = None, root: Path | None = None) -> Iterator[RunningMysql]:
    """A migrated MariaDB/MySQL server and a database copied from its template; all gone on exit."""
    server = start_mysql(settings or ServiceSettings(engine="mysql"), root)
    database: MysqlWorkerDatabase | None = None
    try:
        database = MysqlWorkerDatabase(MysqlEndpoint.of(server), "main", server.settings.seed_tables).setup()
        yield RunningMysql(server, database)
    finally:
        if database is not None:
            database.close()
        server.stop()
