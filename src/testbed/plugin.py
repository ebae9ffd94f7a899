"""pytest glue: options, markers and fixtures that call testbed's library layers. Nothing else.

Servers are shared per session: without xdist the first fixture that needs PostgreSQL starts it; under
pytest-xdist the controller starts it once and hands its address to the workers (workerinput), and each
worker clones its own database from the template.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from testbed import errors
from testbed.config import ISOLATION_STRATEGIES, Settings, load_settings
from testbed.errors import ConfigError, TestbedError
from testbed.isolation.worker import TestContext, WorkerDatabase
from testbed.provision import start_postgres
from testbed.services.postgres import ExistingPostgres, PostgresEndpoint, PostgresServer

MARKER_KWARGS = frozenset({"isolation", "leak_check", "reason", "fail_on_unmatched"})
_settings_key = pytest.StashKey[Settings]()
_pg_server_key = pytest.StashKey["PostgresServer | ExistingPostgres"]()
_started_key = pytest.StashKey[list[dict[str, str]]]()
_pg_error_key = pytest.StashKey[str]()
_WORKERINPUT_PG = "testbed_postgres"
_WORKERINPUT_PG_ERROR = "testbed_postgres_error"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("testbed", "testbed: real services for integration tests")
    group.addoption(
        "--testbed-isolation",
        choices=ISOLATION_STRATEGIES,
        default=None,
        help="default per-test isolation for SQL databases (overrides [tool.testbed.postgres] isolation)",
    )
    group.addoption(
        "--testbed-no-leak-check",
        action="store_true",
        default=False,
        help="do not fail tests that leave database connections open or rows behind",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "testbed(isolation='rollback'|'truncate'|'clone'|'none', leak_check=True, reason='', "
        "fail_on_unmatched=True): per-test testbed options",
    )
    config.stash[_started_key] = []
    if not hasattr(config, "workerinput"):
        if threading.current_thread() is threading.main_thread():
            _install_sigterm_handler(config)
        if config.pluginmanager.hasplugin("xdist") and not config.pluginmanager.has_plugin("testbed-xdist"):
            config.pluginmanager.register(XdistHooks(), "testbed-xdist")


def _install_sigterm_handler(config: pytest.Config) -> None:
    # Python's default SIGTERM action kills the process without running finalizers; turn it into the
    # same orderly interruption as Ctrl-C so servers are stopped and their folders removed.
    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt("SIGTERM")

    previous = signal.signal(signal.SIGTERM, on_sigterm)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    config.add_cleanup(restore)


def _settings(config: pytest.Config) -> Settings:
    if _settings_key not in config.stash:
        config.stash[_settings_key] = load_settings(Path(str(config.rootpath)))
    return config.stash[_settings_key]


def _start_postgres(config: pytest.Config) -> PostgresServer | ExistingPostgres:
    if _pg_server_key not in config.stash:
        settings = _settings(config)
        server = start_postgres(settings.service("postgres"), settings.root)
        config.stash[_pg_server_key] = server
        config.add_cleanup(server.stop)
        config.stash[_started_key].append(dict(server.describe()))
    return config.stash[_pg_server_key]


def _postgres_configured(settings: Settings) -> bool:
    return "postgres" in settings.services or "postgres" in settings.engines


class XdistHooks:
    """Registered only when pytest-xdist is active: the controller starts servers once for all workers."""

    @pytest.hookimpl
    def pytest_configure_node(self, node: Any) -> None:
        config = node.config
        if _postgres_configured(_settings(config)):
            # A start-up failure (bad migration, missing binary) must fail the tests that need PostgreSQL
            # with its message, not crash the controller: hand the error to the workers instead.
            if _pg_error_key not in config.stash:
                try:
                    server = _start_postgres(config)
                    node.workerinput[_WORKERINPUT_PG] = json.dumps(server.endpoint().to_dict())
                except TestbedError as exc:
                    config.stash[_pg_error_key] = json.dumps([type(exc).__name__, exc.boundary, exc.args[0]])
            if _pg_error_key in config.stash:
                node.workerinput[_WORKERINPUT_PG_ERROR] = config.stash[_pg_error_key]


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    started = config.stash.get(_started_key, [])
    if not started:
        return
    terminalreporter.section("testbed services")
    for info in started:
        extra = f"; data on {info['data']}; template cache {info['cache']}" if "data" in info else ""
        terminalreporter.write_line(
            f"{info['engine']} {info['version']} from {info['binary']} ({info['source']}){extra}"
        )


def _record_started(config: pytest.Config, engine: str, endpoint: Any) -> None:
    """Remember a server this process started, for the end-of-session summary."""
    names = {"redis": "Redis", "nats": "NATS", "rabbitmq": "RabbitMQ", "mysql": "MariaDB/MySQL"}
    config.stash.setdefault(_started_key, []).append({
        "engine": names.get(engine, engine), "version": str(getattr(endpoint, "version", "?")),
        "binary": str(getattr(endpoint, "binary", "?")), "source": str(getattr(endpoint, "source", "?")),
    })


# -- fixtures: PostgreSQL ----------------------------------------------------------------------------


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
    def server_url(self) -> str:
        return self.endpoint.url("postgres")

    @property
    def version(self) -> str:
        return self.endpoint.version

    @property
    def binary(self) -> str:
        return self.endpoint.binary

    def __repr__(self) -> str:
        return f"<testbed postgres {self.version} at {self.endpoint.host}:{self.endpoint.port} ({self.binary})>"


@pytest.fixture(scope="session")
def testbed_settings(pytestconfig: pytest.Config) -> Settings:
    """The project's validated [tool.testbed] settings."""
    return _settings(pytestconfig)


@pytest.fixture(scope="session")
def testbed_postgres_endpoint(pytestconfig: pytest.Config) -> PostgresEndpoint:
    """Address of the session's PostgreSQL (started here, or by the xdist controller)."""
    workerinput = getattr(pytestconfig, "workerinput", None)
    if workerinput and _WORKERINPUT_PG_ERROR in workerinput:
        kind, boundary, message = json.loads(workerinput[_WORKERINPUT_PG_ERROR])
        error_class = getattr(errors, kind, TestbedError)
        raise error_class(message, boundary=boundary)
    if workerinput and _WORKERINPUT_PG in workerinput:
        return PostgresEndpoint.from_dict(json.loads(workerinput[_WORKERINPUT_PG]))
    return _start_postgres(pytestconfig).endpoint()


@pytest.fixture(scope="session")
def testbed_worker_database(
    pytestconfig: pytest.Config, testbed_postgres_endpoint: PostgresEndpoint
) -> Iterator[WorkerDatabase]:
    """This worker's own database, cloned from the template."""
    workerinput = getattr(pytestconfig, "workerinput", None)
    worker_id = workerinput["workerid"] if workerinput else "main"
    database = WorkerDatabase(testbed_postgres_endpoint, worker_id)
    yield database
    database.close()


@pytest.fixture(scope="session")
def postgres(
    testbed_postgres_endpoint: PostgresEndpoint, testbed_worker_database: WorkerDatabase
) -> PostgresFixture:
    """The session's PostgreSQL: ``url`` (this worker's database), ``version``, ``binary``."""
    return PostgresFixture(testbed_postgres_endpoint, testbed_worker_database)


def _marker_options(request: pytest.FixtureRequest, settings: Settings) -> tuple[str, bool]:
    pg = settings.service("postgres")
    strategy = request.config.getoption("--testbed-isolation") or pg.isolation
    leak_check = pg.leak_check and not request.config.getoption("--testbed-no-leak-check")
    marker = request.node.get_closest_marker("testbed")
    if marker is not None:
        unknown = set(marker.kwargs) - MARKER_KWARGS
        if unknown or marker.args:
            raise ConfigError(
                f"@pytest.mark.testbed takes keyword arguments {', '.join(sorted(MARKER_KWARGS))}; "
                f"got {', '.join(sorted(unknown)) or repr(marker.args)}."
            )
        strategy = marker.kwargs.get("isolation", strategy)
        if strategy not in ISOLATION_STRATEGIES:
            raise ConfigError(
                f"@pytest.mark.testbed(isolation={strategy!r}): choose one of {', '.join(ISOLATION_STRATEGIES)}."
            )
        if "leak_check" in marker.kwargs:
            leak_check = bool(marker.kwargs["leak_check"])
            if not leak_check and not marker.kwargs.get("reason"):
                raise ConfigError(
                    "@pytest.mark.testbed(leak_check=False) needs reason='...' saying why this test may leave "
                    "connections or rows behind."
                )
    return strategy, leak_check


@pytest.fixture
def testbed_isolation(
    request: pytest.FixtureRequest, testbed_worker_database: WorkerDatabase, testbed_settings: Settings
) -> Iterator[TestContext]:
    """Per-test database isolation by the test's strategy; fails the test if it leaked."""
    strategy, leak_check = _marker_options(request, testbed_settings)
    ctx = testbed_worker_database.begin(request.node.nodeid, strategy, leak_check)
    yield ctx
    testbed_worker_database.end(ctx)


@pytest.fixture
def db(testbed_isolation: TestContext) -> Any:
    """A psycopg 3 connection to the test's database; its work is undone after the test."""
    return testbed_isolation.connection


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


# --- HTTP stubs (testbed.stubs) ---
# One in-process stub server per test session (so one per xdist worker: it starts in milliseconds), reset
# before every test; `http_stub` is the per-test view. Everything here calls testbed.stubs (usable without
# pytest), imported lazily so sessions that never stub HTTP do not pay for it.

from collections.abc import Iterator as _Iterator  # noqa: E402
from typing import TYPE_CHECKING as _TYPE_CHECKING  # noqa: E402

if _TYPE_CHECKING:
    from testbed.stubs import HttpStub, StubServer
    from testbed.stubs.client import RemoteStubServer


@pytest.fixture(scope="session")
def testbed_http_stub_server(pytestconfig: pytest.Config) -> _Iterator[StubServer | RemoteStubServer]:
    """The session's HTTP stub server (WireMock-compatible), on an ephemeral loopback port.

    ``[tool.testbed.http] mappings`` names a WireMock root dir (with mappings/ and __files/) loaded at start
    and after every reset; ``https = true`` starts the HTTPS port at once (otherwise on first use);
    ``in_process = false`` runs it as its own process (``python -m testbed.stubs``) instead of a thread.
    """
    from testbed.stubs import StubServer

    settings = _settings(pytestconfig).http
    root_dir = None
    if settings.mappings:
        root_dir = Path(settings.mappings)
        if not root_dir.is_absolute():
            root_dir = pytestconfig.rootpath / root_dir
    server: StubServer | RemoteStubServer
    if settings.in_process:  # the default: measured faster to start and to answer (bench/stubs.py)
        server = StubServer(root_dir=root_dir, https=settings.https).start()
    else:
        from testbed.stubs.client import RemoteStubServer

        server = RemoteStubServer.spawn(root_dir=root_dir, https=settings.https)
    try:
        if server.load_errors:
            raise server.load_errors[0]
        yield server
    finally:
        server.stop()


@pytest.fixture
def http_stub(
    testbed_http_stub_server: StubServer | RemoteStubServer, request: pytest.FixtureRequest
) -> _Iterator[HttpStub]:
    """A stub server for this test: fresh stubs (the configured mapping files only) and an empty journal.

    A request that matched no stub fails the test at teardown, showing the closest stubs; turn that off with
    ``@pytest.mark.testbed(fail_on_unmatched=False)`` or ``[tool.testbed.http] fail_on_unmatched = false``.
    """
    from testbed.stubs import HttpStub

    fail = _settings(request.config).http.fail_on_unmatched
    marker = request.node.get_closest_marker("testbed")
    if marker is not None and "fail_on_unmatched" in marker.kwargs:
        fail = bool(marker.kwargs["fail_on_unmatched"])
    testbed_http_stub_server.reset()
    stub = HttpStub(testbed_http_stub_server, fail_on_unmatched=fail)
    yield stub
    errors = stub.server_errors()
    if errors:
        pytest.fail("[HTTP stub] the stub server failed while answering this test (a testbed bug, please "
                    "report it):\n" + "\n".join(errors), pytrace=False)
    if fail and stub.unmatched:
        pytest.fail(
            f"[HTTP stub] {len(stub.unmatched)} request(s) in this test matched no stub (each got a 404):\n"
            f"{stub.unmatched_report()}\nAdd a stub for them, or allow this with "
            "@pytest.mark.testbed(fail_on_unmatched=False) or [tool.testbed.http] fail_on_unmatched = false.",
            pytrace=False,
        )


# --- Brokers and cache (testbed.services: redis, nats, rabbitmq; testbed.events) ---
# Session fixtures start one server per engine on first use (or adopt the one the xdist controller
# started, see pytest_testbed_brokers_configure_node); per-test fixtures reset what a test wrote.
# Hook functions here carry their own pytest_testbed_brokers_* names plus specname=, so they never
# collide with hooks of the same kind elsewhere in this module.
from collections.abc import Callable as _BrokersCallable  # noqa: E402
from collections.abc import Iterator as _BrokersIterator  # noqa: E402
from typing import Any as _BrokersAny  # noqa: E402

_BROKER_ENGINES = ("redis", "nats", "rabbitmq")
_brokers_started_key = pytest.StashKey[dict[str, "_BrokersAny"]]()
_brokers_failed_key = pytest.StashKey[dict[str, str]]()


def _brokers_settings(config: pytest.Config) -> _BrokersAny:
    return _settings(config)


def _brokers_worker_id(config: pytest.Config) -> str | None:
    # From xdist's workerinput, not the env var: a pytester run inside a worker inherits the env var.
    workerinput = getattr(config, "workerinput", None)
    return str(workerinput["workerid"]) if workerinput else None


def _brokers_start(engine: str, settings: _BrokersAny,
                   workers: tuple[str | None, ...]) -> tuple[_BrokersAny, _BrokersCallable[[], None]]:
    """Start one broker for the given xdist workers (None: no xdist); its endpoint and how to stop it."""
    from testbed.services import nats, rabbitmq, redis

    accounts = tuple(nats.worker_account(w) for w in workers)
    # A node of its own needs no per-worker vhost (each one costs boot time); a shared node has one each.
    vhosts = tuple(rabbitmq.worker_vhost(w) for w in workers) if len(workers) > 1 else ("/",)
    if engine == "redis":
        r = redis.RedisServer(settings.service("redis")).start()
        return r.endpoint(), r.stop
    if engine == "nats":
        n = nats.NatsServer(settings.service("nats"), accounts=accounts).start()
        return n.endpoint(), n.stop
    q = rabbitmq.RabbitMQServer(settings.service("rabbitmq"), vhosts=vhosts).start()
    return q.endpoint(), q.stop


def _brokers_endpoint_from_controller(config: pytest.Config, engine: str) -> _BrokersAny | None:
    from testbed.errors import ServerStartError
    from testbed.services import nats, rabbitmq, redis

    handed: dict[str, _BrokersAny] = getattr(config, "workerinput", {}).get("testbed_brokers", {})
    if engine not in handed:
        return None
    if "error" in handed[engine]:  # the controller could not start it: every test that needs it says why
        raise ServerStartError(handed[engine]["error"], boundary=engine)
    if engine == "redis":
        return redis.RedisEndpoint.from_dict(handed[engine])
    if engine == "nats":
        return nats.NatsEndpoint.from_dict(handed[engine]).for_worker(_brokers_worker_id(config))
    return rabbitmq.RabbitMQEndpoint.from_dict(handed[engine])


@pytest.hookimpl(specname="pytest_configure_node", optionalhook=True)
def pytest_testbed_brokers_configure_node(node: _BrokersAny) -> None:
    """xdist controller: start the brokers listed in [tool.testbed] services once, hand them to workers."""
    config = node.config
    settings = _brokers_settings(config)
    wanted = [e for e in _BROKER_ENGINES if e in settings.services]
    started = config.stash.setdefault(_brokers_started_key, {})
    count = len(getattr(config.option, "tx", None) or []) or 1
    from testbed.errors import TestbedError

    failed = config.stash.setdefault(_brokers_failed_key, {})
    for engine in wanted:
        if engine not in started and engine not in failed:
            try:
                started[engine] = _brokers_start(engine, settings, tuple(f"gw{i}" for i in range(count)))
                _record_started(config, engine, started[engine][0])
            except TestbedError as exc:  # an error here would crash xdist; the tests report it instead
                failed[engine] = str(exc).removeprefix(f"[{exc.boundary}] ")
    node.workerinput["testbed_brokers"] = {
        e: started[e][0].to_dict() if e in started else {"error": failed[e]} for e in wanted
    }


@pytest.hookimpl(specname="pytest_configure")
def pytest_testbed_brokers_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "testbed_events(*topics, backend=None, **options): the `events` fixture listens to these topics "
        "before the test starts",
    )


@pytest.hookimpl(specname="pytest_unconfigure", trylast=True)
def pytest_testbed_brokers_unconfigure(config: pytest.Config) -> None:
    for _endpoint, stop in config.stash.get(_brokers_started_key, {}).values():
        stop()
    config.stash[_brokers_started_key] = {}


def _brokers_session_server(request: pytest.FixtureRequest, engine: str) -> _BrokersIterator[_BrokersAny]:
    handed = _brokers_endpoint_from_controller(request.config, engine)
    if handed is not None:
        endpoint, stop = handed, None
    else:
        workers = (_brokers_worker_id(request.config),)
        endpoint, stop = _brokers_start(engine, _brokers_settings(request.config), workers)
        _record_started(request.config, engine, endpoint)
    try:
        yield endpoint
    finally:
        if engine == "rabbitmq":
            from testbed.services.rabbitmq_inventory import close_inventories

            close_inventories()
        if stop is not None:
            stop()


@pytest.fixture(scope="session")
def testbed_redis_server(request: pytest.FixtureRequest) -> _BrokersIterator[_BrokersAny]:
    """The session's Redis server (a RedisEndpoint), started on first use."""
    yield from _brokers_session_server(request, "redis")


@pytest.fixture
def testbed_redis_db(request: pytest.FixtureRequest, testbed_redis_server: _BrokersAny) -> _BrokersIterator[int]:
    """This worker's Redis database number, flushed after the test."""
    from testbed.services.redis import worker_database

    db = worker_database(_brokers_worker_id(request.config))
    testbed_redis_server.reset(db)  # nothing from an earlier test that crashed before its teardown
    yield db
    testbed_redis_server.reset(db)


@pytest.fixture
def redis_url(testbed_redis_server: _BrokersAny, testbed_redis_db: int) -> str:
    """redis://... of this worker's database; everything written there is deleted after the test."""
    return str(testbed_redis_server.url(testbed_redis_db))


@pytest.fixture
def redis(testbed_redis_server: _BrokersAny, testbed_redis_db: int) -> _BrokersIterator[_BrokersAny]:
    """A redis-py client on this worker's database, flushed after the test."""
    client = testbed_redis_server.client(testbed_redis_db)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def testbed_nats_server(request: pytest.FixtureRequest) -> _BrokersIterator[_BrokersAny]:
    """The session's NATS server with JetStream (a NatsEndpoint), started on first use."""
    yield from _brokers_session_server(request, "nats")


@pytest.fixture
def nats(testbed_nats_server: _BrokersAny, nats_url: str) -> _BrokersAny:
    """This worker's NATS account on the session's server (a NatsEndpoint: .url, .jetstream_api(...),
    .stream_names()); JetStream streams the test created are deleted after it."""
    return testbed_nats_server


@pytest.fixture
def nats_url(testbed_nats_server: _BrokersAny) -> _BrokersIterator[str]:
    """nats://... of this worker's account; JetStream streams the test created are deleted after it."""
    before = testbed_nats_server.stream_names()
    yield str(testbed_nats_server.url)
    if testbed_nats_server.alive():
        testbed_nats_server.delete_streams(testbed_nats_server.stream_names() - before)


@pytest.fixture(scope="session")
def testbed_rabbitmq_server(request: pytest.FixtureRequest) -> _BrokersIterator[_BrokersAny]:
    """The session's RabbitMQ node (a RabbitMQEndpoint), started on first use (it takes seconds)."""
    yield from _brokers_session_server(request, "rabbitmq")


@pytest.fixture
def rabbitmq_url(request: pytest.FixtureRequest, testbed_rabbitmq_server: _BrokersAny) -> _BrokersIterator[str]:
    """amqp://... of this worker's vhost; its queues and exchanges are deleted after the test."""
    vhost = testbed_rabbitmq_server.vhost_for(_brokers_worker_id(request.config))
    testbed_rabbitmq_server.reset(vhost)
    yield str(testbed_rabbitmq_server.url(vhost))
    if testbed_rabbitmq_server.alive():
        testbed_rabbitmq_server.reset(vhost)


@pytest.fixture
def rabbitmq_connection(rabbitmq_url: str) -> _BrokersIterator[_BrokersAny]:
    """A pika BlockingConnection to this worker's vhost, closed after the test (queues deleted too)."""
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    try:
        yield conn
    finally:
        if conn.is_open:
            conn.close()


def _brokers_event_backends(request: pytest.FixtureRequest) -> dict[str, _BrokersCallable[[], _BrokersAny]]:
    def nats_backend(jetstream: bool) -> _BrokersCallable[[], _BrokersAny]:
        def make() -> _BrokersAny:
            from testbed.events.nats import NatsBackend

            server = request.getfixturevalue("testbed_nats_server")
            return NatsBackend(server.url, jetstream=jetstream, diagnose=_brokers_diagnose(server))

        return make

    def redis_backend(streams: bool) -> _BrokersCallable[[], _BrokersAny]:
        def make() -> _BrokersAny:
            from testbed.events.redis import RedisBackend

            server = request.getfixturevalue("testbed_redis_server")
            db = request.getfixturevalue("testbed_redis_db")
            return RedisBackend(server.url(db), streams=streams, diagnose=_brokers_diagnose(server))

        return make

    def rabbitmq_backend() -> _BrokersAny:
        from testbed.events.rabbitmq import RabbitMQBackend

        server = request.getfixturevalue("testbed_rabbitmq_server")
        vhost_url = request.getfixturevalue("rabbitmq_url")
        return RabbitMQBackend(vhost_url, diagnose=_brokers_diagnose(server))

    return {"nats": nats_backend(False), "jetstream": nats_backend(True), "redis": redis_backend(False),
            "redis-stream": redis_backend(True), "rabbitmq": rabbitmq_backend}


def _brokers_diagnose(server: _BrokersAny) -> _BrokersCallable[[], str]:
    def diagnose() -> str:
        try:
            server.check_alive("while a test waited for events", settle=2.0)
        except Exception as exc:
            return str(exc)
        return "The server process is still running; the connection itself was closed."

    return diagnose


@pytest.fixture
def events(request: pytest.FixtureRequest) -> _BrokersIterator[_BrokersAny]:
    """Capture broker messages: ``events.listen(topic)`` before the action, ``events.expect(topic, ...)`` after."""
    from testbed.events import EventRecorder

    settings = _brokers_settings(request.config)
    default = next((e for e in settings.services if e in ("nats", "rabbitmq", "redis")), "nats")

    def closing_first(make: _BrokersCallable[[], _BrokersAny]) -> _BrokersCallable[[], _BrokersAny]:
        # A backend opened mid-test requested its server fixtures just now; registering the close on the
        # item after them makes it run before their per-test resets (no subscription sees its queue vanish).
        def wrapped() -> _BrokersAny:
            backend = make()
            request.node.addfinalizer(recorder.close)
            return backend

        return wrapped

    backends = {name: closing_first(make) for name, make in _brokers_event_backends(request).items()}
    recorder = EventRecorder(backends, default_backend=default, worker=_brokers_worker_id(request.config),
                             nodeid=request.node.nodeid)
    # @pytest.mark.testbed_events("orders.created", backend="nats"): listening starts before the test body.
    for marker in reversed(list(request.node.iter_markers("testbed_events"))):
        for topic in marker.args:
            recorder.listen(str(topic), **marker.kwargs)
    try:
        yield recorder
    finally:
        recorder.close()


# --- MariaDB/MySQL (testbed.services.mysql) ---
# Self-contained: its own stash keys, and hook implementations under their own names (``specname``), so it
# adds to the rest of this module without touching it.

import json as _mysql_json  # noqa: E402
from collections.abc import Iterator as _MysqlIterator  # noqa: E402
from typing import Any as _MysqlAny  # noqa: E402

from testbed.config import ISOLATION_STRATEGIES as _MYSQL_STRATEGIES  # noqa: E402
from testbed.config import Settings as _MysqlSettings  # noqa: E402
from testbed.errors import ConfigError as _MysqlConfigError  # noqa: E402

_MYSQL_WORKERINPUT = "testbed_mysql"
_mysql_server_key = pytest.StashKey[_MysqlAny]()
_mysql_error_key = pytest.StashKey[str]()
_MYSQL_WORKERINPUT_ERROR = "testbed_mysql_error"


def _mysql_settings(config: pytest.Config) -> _MysqlSettings:
    return _settings(config)


def _mysql_configured(settings: _MysqlSettings) -> bool:
    return "mysql" in settings.services or "mysql" in settings.engines


def _start_mysql_once(config: pytest.Config) -> _MysqlAny:
    """The session's server, started on first use (by the xdist controller, or the only process)."""
    if _mysql_server_key not in config.stash:
        from testbed.provision_mysql import start_mysql

        settings = _mysql_settings(config)
        server = start_mysql(settings.service("mysql"), settings.root)
        config.stash[_mysql_server_key] = server
        config.add_cleanup(server.stop)
    return config.stash[_mysql_server_key]


@pytest.hookimpl(optionalhook=True, specname="pytest_configure_node")
def pytest_testbed_mysql_configure_node(node: _MysqlAny) -> None:
    """xdist controller: start the server once and hand its address to every worker."""
    config = node.config
    if _mysql_configured(_mysql_settings(config)):
        from testbed.errors import TestbedError
        from testbed.services.mysql import MysqlEndpoint

        # A start-up failure (bad migration, missing binary) must fail the tests that need the server with
        # its message, not crash the controller with an INTERNALERROR: hand the error to the workers.
        if _mysql_error_key in config.stash:
            node.workerinput[_MYSQL_WORKERINPUT_ERROR] = config.stash[_mysql_error_key]
            return
        try:
            server = _start_mysql_once(config)
        except TestbedError as exc:
            config.stash[_mysql_error_key] = _mysql_json.dumps([type(exc).__name__, str(exc)])
            node.workerinput[_MYSQL_WORKERINPUT_ERROR] = config.stash[_mysql_error_key]
            return
        node.workerinput[_MYSQL_WORKERINPUT] = _mysql_json.dumps(MysqlEndpoint.of(server).to_dict())


@pytest.hookimpl(specname="pytest_terminal_summary")
def pytest_testbed_mysql_terminal_summary(terminalreporter: _MysqlAny, config: pytest.Config) -> None:
    server = config.stash.get(_mysql_server_key, None)
    if server is None or not server.version:
        return
    info = server.describe()
    terminalreporter.write_line(
        f"testbed: {info['engine']} {info['version']} from {info['binary']} ({info['source']}); "
        f"data on {info['data']}; template cache {info['cache']}; ready in {server.timings['start_ms']:.0f} ms"
    )


@pytest.fixture(scope="session")
def testbed_mysql_server(pytestconfig: pytest.Config) -> _MysqlAny:
    """Address of the session's MariaDB/MySQL (a MysqlEndpoint), started on first use.

    Under pytest-xdist the controller starts it (when [tool.testbed.mysql] or services = ["mysql"] is
    configured) and the workers receive its address.
    """
    from testbed.services.mysql import MysqlEndpoint

    workerinput = getattr(pytestconfig, "workerinput", None)
    if workerinput is not None:
        if _MYSQL_WORKERINPUT_ERROR in workerinput:
            import testbed.errors

            name, message = _mysql_json.loads(workerinput[_MYSQL_WORKERINPUT_ERROR])
            error_class = getattr(testbed.errors, name, testbed.errors.TestbedError)
            error = error_class(message.split("] ", 1)[-1], boundary=message[1:].split("] ", 1)[0])
            raise error
        if _MYSQL_WORKERINPUT not in workerinput:
            raise _MysqlConfigError(
                "a test uses MariaDB/MySQL under pytest-xdist, but the project does not configure it, so the "
                "controller did not start it (workers never start servers of their own). Add a "
                "[tool.testbed.mysql] table or services = [\"mysql\"] to [tool.testbed] in pyproject.toml."
            )
        return MysqlEndpoint.from_dict(_mysql_json.loads(workerinput[_MYSQL_WORKERINPUT]))
    return MysqlEndpoint.of(_start_mysql_once(pytestconfig))


@pytest.fixture(scope="session")
def testbed_mysql_database(
    pytestconfig: pytest.Config, testbed_mysql_server: _MysqlAny
) -> _MysqlIterator[_MysqlAny]:
    """This worker's database (``testbed_gw0``, ``testbed_main``), copied from the migrated template."""
    from testbed.isolation.mysql import MysqlWorkerDatabase

    workerinput = getattr(pytestconfig, "workerinput", None)
    worker_id = workerinput["workerid"] if workerinput else "main"
    seeds = _mysql_settings(pytestconfig).service("mysql").seed_tables
    database = MysqlWorkerDatabase(testbed_mysql_server, worker_id, seeds).setup()
    yield database
    database.close()


def _mysql_marker_options(request: pytest.FixtureRequest) -> tuple[str, bool]:
    settings = _mysql_settings(request.config).service("mysql")
    # The session-wide command-line options, when the plugin declares them, apply to MariaDB/MySQL too.
    strategy = request.config.getoption("--testbed-isolation", default=None) or settings.isolation
    leak_check = settings.leak_check and not request.config.getoption("--testbed-no-leak-check", default=False)
    marker = request.node.get_closest_marker("testbed")
    if marker is not None:
        strategy = marker.kwargs.get("isolation", strategy)
        leak_check = bool(marker.kwargs.get("leak_check", leak_check))
    if strategy not in _MYSQL_STRATEGIES:
        raise _MysqlConfigError(
            f"@pytest.mark.testbed(isolation={strategy!r}): choose one of {', '.join(_MYSQL_STRATEGIES)}."
        )
    return strategy, leak_check


@pytest.fixture
def testbed_mysql_isolation(
    request: pytest.FixtureRequest, testbed_mysql_database: _MysqlAny
) -> _MysqlIterator[_MysqlAny]:
    """Per-test MariaDB/MySQL isolation by the test's strategy; fails the test if it broke isolation."""
    from testbed.errors import TestbedError

    strategy, leak_check = _mysql_marker_options(request)
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
def mysql_db(testbed_mysql_isolation: _MysqlAny) -> _MysqlAny:
    """A PyMySQL connection to the test's database; its work is undone after the test.

    Isolation: ``@pytest.mark.testbed(isolation=...)``, else [tool.testbed.mysql] isolation ("rollback").
    """
    return testbed_mysql_isolation.connection


@pytest.fixture
def mysql_url(testbed_mysql_isolation: _MysqlAny) -> str:
    """``mysql://root:<password>@127.0.0.1:<port>/<db>``: the test's database, for the application's own pool."""
    return str(testbed_mysql_isolation.url)
