"""The SQL family's fixtures: PostgreSQL (``postgres``, ``db``, ``db_session``, ``db_url``) and MariaDB/MySQL
(``mysql_db``, ``mysql_url``): a database per xdist worker cloned from the migrated template, and per-test
isolation by the strategy the test asks for.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from testbed.config import Settings, SqlSettings
from testbed.errors import TestbedError
from testbed.plugin.options import isolation_for
from testbed.plugin.session import capture_enabled, settings, worker_id

if TYPE_CHECKING:
    from testbed.engines.mysql import MysqlEndpoint
    from testbed.engines.postgres import PostgresEndpoint
    from testbed.isolation.mysql import MysqlWorkerDatabase
    from testbed.isolation.worker import TestContext, WorkerDatabase


@pytest.fixture(scope="session")
def testbed_settings(pytestconfig: pytest.Config) -> Settings:
    """The project's validated [tool.testbed] settings."""
    return settings(pytestconfig)


_databases_key = pytest.StashKey[dict[str, Any]]()


def worker_database(config: pytest.Config, engine: str) -> Any:
    """This process's database of a SQL engine, cloned from the template (made once, closed at the end)."""
    from testbed import engines
    from testbed.plugin.session import services

    made = config.stash.setdefault(_databases_key, {})
    if engine not in made:
        import time

        from testbed import observe

        sql = engines.get(engine)
        endpoint = services(config).worker_endpoint(engine)
        started = time.perf_counter()
        made[engine] = sql.worker_database(endpoint, worker_id(config) or "main", settings(config).service(engine))  # type: ignore[attr-defined]
        enable = getattr(made[engine], "enable_capture", None)
        if enable is not None and capture_enabled(config):
            enable()
        ms = (time.perf_counter() - started) * 1000
        observe.publish("services", "start", f"{sql.label} database of this worker ready in {ms:.0f} ms",
                        engine=engine, ms=round(ms, 1))
    return made[engine]


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    for database in reversed(list(config.stash.get(_databases_key, {}).values())):
        database.close()
    config.stash[_databases_key] = {}


def _sql_settings(config: pytest.Config, engine: str) -> SqlSettings:
    found = settings(config).service(engine)
    assert isinstance(found, SqlSettings)
    return found


# -- PostgreSQL --------------------------------------------------------------------------------------


class PostgresFixture:
    """What the ``postgres`` fixture gives: the session's server and this worker's database."""

    def __init__(self, endpoint: PostgresEndpoint, database: WorkerDatabase) -> None:
        self.endpoint = endpoint
        self.database = database

    @property
    def url(self) -> str:
        """This worker's database (cloned from the migrated template), loopback TCP with password."""
        return self.database.url

    @property
    def sqlalchemy_url(self) -> str:
        return self.url.replace("postgresql://", "postgresql+psycopg://", 1)

    @property
    def server_url(self) -> str:
        return self.endpoint.database_url("postgres")

    @property
    def version(self) -> str:
        return self.endpoint.version

    @property
    def binary(self) -> str:
        return self.endpoint.binary

    def __repr__(self) -> str:
        return f"<testbed postgres {self.version} at {self.endpoint.host}:{self.endpoint.port} ({self.binary})>"


@pytest.fixture(scope="session")
def testbed_postgres_endpoint(testbed_postgres_server: PostgresEndpoint) -> PostgresEndpoint:
    """Alias of ``testbed_postgres_server``: the session's PostgreSQL (started here, or by the xdist controller)."""
    return testbed_postgres_server


@pytest.fixture(scope="session")
def testbed_worker_database(pytestconfig: pytest.Config, testbed_postgres_server: PostgresEndpoint) -> WorkerDatabase:
    """This worker's own database, cloned from the template."""
    database: WorkerDatabase = worker_database(pytestconfig, "postgres")
    return database


@pytest.fixture(scope="session")
def postgres(testbed_postgres_server: PostgresEndpoint, testbed_worker_database: WorkerDatabase) -> PostgresFixture:
    """The session's PostgreSQL: ``url`` (this worker's database), ``version``, ``binary``."""
    return PostgresFixture(testbed_postgres_server, testbed_worker_database)


@pytest.fixture
def testbed_isolation(request: pytest.FixtureRequest, testbed_worker_database: WorkerDatabase) -> Iterator[TestContext]:
    """Per-test database isolation by the test's strategy; fails the test if it leaked."""
    configured = _sql_settings(request.config, "postgres")
    strategy, leak_check = isolation_for(request, configured.isolation, configured.leak_check)
    ctx = testbed_worker_database.begin(request.node.nodeid, strategy, leak_check)
    yield ctx
    testbed_worker_database.end(ctx)


@pytest.fixture
def testbed_db(testbed_isolation: TestContext) -> Any:
    """A psycopg 3 connection to the test's database; its work is undone after the test (also ``db``, unless
    pytest-django runs a Django project: then ``db`` is Django's)."""
    return testbed_isolation.connection


def _db(testbed_db: Any) -> Any:
    """A psycopg 3 connection to the test's database; its work is undone after the test (``testbed_db``)."""
    return testbed_db


@pytest.fixture
def db_session(testbed_isolation: TestContext, testbed_worker_database: WorkerDatabase) -> Iterator[Any]:
    """A SQLAlchemy 2 Session on the test's database; ``commit()`` is allowed and undone after the test.

    testbed.factories persist through it while the test runs.
    """
    from testbed.factories import bound_to

    ctx = testbed_isolation
    if ctx.strategy == "rollback":
        session = testbed_worker_database.session_factory().open()
    else:
        from sqlalchemy import create_engine
        from sqlalchemy.orm import Session
        from sqlalchemy.pool import NullPool

        engine = create_engine(ctx.url.replace("postgresql://", "postgresql+psycopg://", 1), poolclass=NullPool)
        ctx.engines.append(engine)
        session = Session(bind=engine)
    ctx.sessions.append(session)
    with bound_to(session):
        yield session


@pytest.fixture
def db_url(testbed_isolation: TestContext) -> str:
    """URL of the test's database, for an application that opens its own connections."""
    return testbed_isolation.url


@pytest.fixture
def postgres_url(db_url: str) -> str:
    """Alias of ``db_url``."""
    return db_url


# -- MariaDB / MySQL ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def testbed_mysql_database(pytestconfig: pytest.Config, testbed_mysql_server: MysqlEndpoint) -> MysqlWorkerDatabase:
    """This worker's database (``testbed_gw0``, ``testbed_main``), copied from the migrated template."""
    database: MysqlWorkerDatabase = worker_database(pytestconfig, "mysql")
    return database


@pytest.fixture
def testbed_mysql_isolation(
    request: pytest.FixtureRequest, testbed_mysql_database: MysqlWorkerDatabase
) -> Iterator[Any]:
    """Per-test MariaDB/MySQL isolation by the test's strategy; fails the test if it broke isolation."""
    configured = _sql_settings(request.config, "mysql")
    strategy, leak_check = isolation_for(request, configured.isolation, configured.leak_check)
    try:
        ctx = testbed_mysql_database.begin(request.node.nodeid, strategy, leak_check)
    except TestbedError as exc:
        pytest.fail(f"{type(exc).__name__}: {exc}", pytrace=False)  # the message says it all; no frames of ours
    yield ctx
    try:
        testbed_mysql_database.end(ctx)
    except TestbedError as exc:
        pytest.fail(f"{type(exc).__name__}: {exc}", pytrace=False)


@pytest.fixture
def mysql_db(testbed_mysql_isolation: Any) -> Any:
    """A PyMySQL connection to the test's database; its work is undone after the test.

    Isolation: ``@pytest.mark.testbed(isolation=...)``, else [tool.testbed.mysql] isolation ("rollback").
    """
    return testbed_mysql_isolation.connection


@pytest.fixture
def mysql_url(testbed_mysql_isolation: Any) -> str:
    """``mysql://root:<password>@127.0.0.1:<port>/<db>``: the test's database, for the application's own pool."""
    return str(testbed_mysql_isolation.url)


# testbed's short fixture names, and the long name each is also reachable under.
SHORT_NAMES = {"db": "testbed_db", "db_session": None, "db_url": None, "async_db": None, "async_db_session": None,
               "http_stub": None, "events": None, "postgres": None}


@pytest.hookimpl(trylast=True)  # after pytest-django configured Django (or did not)
def pytest_configure(config: pytest.Config) -> None:
    from types import ModuleType

    from testbed.plugin.django import django_active

    if django_active(config) or config.pluginmanager.has_plugin("testbed-db-alias"):
        return  # pytest-django's `db` keeps its meaning in a Django project; ours is `testbed_db`
    module = ModuleType("testbed.plugin.sql.db_alias", "testbed's `db` (when pytest-django does not own it)")
    module.db = pytest.fixture(name="db")(_db)  # type: ignore[attr-defined]
    config.pluginmanager.register(module, "testbed-db-alias")


def pytest_report_collectionfinish(config: pytest.Config, start_path: Any, items: list[pytest.Item]) -> list[str]:
    """Say so when another plugin defines one of testbed's short fixture names, and which one tests get."""
    from testbed.plugin.django import django_active

    session = items[0].session if items else None
    if session is None:
        return []
    lines = []
    manager = session._fixturemanager
    for name, long_name in SHORT_NAMES.items():
        plugin_defs = [d for d in manager.getfixturedefs(name, session) or () if not d.baseid]
        owners = list(dict.fromkeys(getattr(d.func, "__module__", "?") for d in plugin_defs))
        ours = [o for o in owners if o.startswith("testbed.")]
        theirs = [o for o in owners if not o.startswith("testbed.")]
        if not ours or not theirs:
            continue
        if name == "db" and theirs == ["pytest_django.fixtures"] and not django_active(config):
            continue  # no Django project here: pytest-django's `db` could only skip; testbed's is meant
        winner = owners[-1]
        lines.append(
            f"testbed: fixture {name!r} is defined by {' and '.join(owners)}; tests get the one from {winner}. "
            + (f"testbed's is also available as {long_name!r}." if long_name else
               "Remove or rename the other one to use testbed's.")
        )
    return lines
