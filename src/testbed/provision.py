"""Real servers without pytest: ``testbed.postgres()``, ``testbed.mysql()``, ``testbed.redis()``, ... each a
context manager yielding a :class:`Service` of the same shape for every engine.

    with testbed.postgres(version="16", migrations="migrations/") as pg:
        engine = create_engine(pg.sqlalchemy_url)     # pg.url: a database cloned from the migrated template
    with testbed.redis() as r:
        client = redis.Redis.from_url(r.url)

The plugin starts servers through the same engines (``testbed.engines``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from testbed.config import ServiceSettings, parse_service
from testbed.engines.base import Endpoint, Running


class Service:
    """A running server and what an application needs from it.

    ``url`` is what to hand the application: for a SQL engine, a database cloned from the migrated template
    (``database``); for the others, the server's endpoint URL. ``endpoint`` has the details (``version``,
    ``binary``, ``host``, ``port``, ...).
    """

    def __init__(self, engine: str, server: Running, database: Any = None) -> None:
        self.engine = engine
        self.server = server
        self.endpoint: Endpoint = server.endpoint()
        self.database = database

    @property
    def url(self) -> str:
        if self.database is not None:
            return str(self.database.url() if callable(self.database.url) else self.database.url)
        return self.endpoint.url

    @property
    def sqlalchemy_url(self) -> str:
        """``url`` with the driver SQLAlchemy needs (psycopg 3 / PyMySQL)."""
        return self.url.replace("postgresql://", "postgresql+psycopg://", 1).replace("mysql://", "mysql+pymysql://", 1)

    @property
    def version(self) -> str:
        return self.endpoint.version

    @property
    def binary(self) -> str:
        return self.endpoint.binary

    @property
    def dbname(self) -> str:
        return str(self.database.dbname) if self.database is not None else ""

    def connect(self, **kwargs: Any) -> Any:
        """A new driver connection to the database (SQL engines)."""
        connect = getattr(self.endpoint, "connect", None)
        if connect is None or self.database is None:
            raise TypeError(f"{self.engine} has no database connection; use .url with its client library")
        return connect(self.database.dbname, **kwargs)

    def connect_kwargs(self) -> dict[str, Any]:
        """Driver keyword arguments for the database (MariaDB/MySQL: over the private socket)."""
        kwargs: dict[str, Any] = getattr(self.endpoint, "connect_kwargs")(self.database.dbname)  # noqa: B009
        return kwargs


def settings_for(engine: str, options: dict[str, Any], root: Path) -> ServiceSettings:
    """Validated settings of ``engine`` from keyword arguments (the same checks as [tool.testbed.<engine>])."""
    return parse_service(engine, {k: v for k, v in options.items() if v is not None}, root=root)


@contextlib.contextmanager
def service(engine: str, *, root: str | Path = ".", settings: ServiceSettings | None = None,
            **options: Any) -> Iterator[Service]:
    """Run a real ``engine`` server for the duration of the block; keyword arguments are its config keys."""
    from testbed import engines

    root_path = Path(root).resolve()
    resolved = settings or settings_for(engine, options, root_path)
    eng = engines.get(engine)
    running = eng.start(resolved, root_path)
    database = None
    try:
        endpoint = running.endpoint()
        open_database = getattr(eng, "worker_database", None)
        if open_database is not None:
            database = open_database(endpoint, "main", resolved)
        yield Service(engine, running, database)
    finally:
        if database is not None:
            database.close()
        running.stop()


@contextlib.contextmanager
def postgres(version: str | None = None, migrations: str | None = None, *, root: str | Path = ".",
             **options: Any) -> Iterator[Service]:
    """Run a real PostgreSQL for the duration of the block; its ``url`` points at a migrated database."""
    with service("postgres", root=root, version=version, migrations=migrations, **options) as s:
        yield s


def start_postgres(settings: ServiceSettings, root: Path) -> Any:
    """Start (or attach to) the PostgreSQL these settings describe; the caller stops it."""
    from testbed import engines

    return engines.get("postgres").start(settings, root)


RunningPostgres = Service  # the name before engines shared one shape (kept for one release)
