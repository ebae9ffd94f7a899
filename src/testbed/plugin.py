"""pytest glue: options, markers and fixtures that call testbed's library layers. Nothing else."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "testbed(isolation=..., leak_check=..., reason=...): per-test testbed options",
    )


# --- Brokers and cache (testbed.services: redis, nats, rabbitmq; testbed.events) ---
# Session fixtures start one server per engine on first use (or adopt the one the xdist controller
# started, see pytest_testbed_brokers_configure_node); per-test fixtures reset what a test wrote.
# Hook functions here carry their own pytest_testbed_brokers_* names plus specname=, so they never
# collide with hooks of the same kind elsewhere in this module.
import os as _brokers_os  # noqa: E402
from collections.abc import Callable as _BrokersCallable  # noqa: E402
from collections.abc import Iterator as _BrokersIterator  # noqa: E402
from typing import Any as _BrokersAny  # noqa: E402

_BROKER_ENGINES = ("redis", "nats", "rabbitmq")
_brokers_settings_key = pytest.StashKey["_BrokersAny"]()
_brokers_started_key = pytest.StashKey[dict[str, "_BrokersAny"]]()
_brokers_failed_key = pytest.StashKey[dict[str, str]]()


def _brokers_settings(config: pytest.Config) -> _BrokersAny:
    from testbed.config import load_settings

    if _brokers_settings_key not in config.stash:
        config.stash[_brokers_settings_key] = load_settings(config.rootpath)
    return config.stash[_brokers_settings_key]


def _brokers_worker_id() -> str | None:
    return _brokers_os.environ.get("PYTEST_XDIST_WORKER")


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
        return nats.NatsEndpoint.from_dict(handed[engine]).for_worker(_brokers_worker_id())
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
        endpoint, stop = _brokers_start(engine, _brokers_settings(request.config), (_brokers_worker_id(),))
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
def testbed_redis_db(testbed_redis_server: _BrokersAny) -> _BrokersIterator[int]:
    """This worker's Redis database number, flushed after the test."""
    from testbed.services.redis import worker_database

    db = worker_database(_brokers_worker_id())
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
def rabbitmq_url(testbed_rabbitmq_server: _BrokersAny) -> _BrokersIterator[str]:
    """amqp://... of this worker's vhost; its queues and exchanges are deleted after the test."""
    vhost = testbed_rabbitmq_server.vhost_for(_brokers_worker_id())
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
    recorder = EventRecorder(backends, default_backend=default, worker=_brokers_worker_id(),
                             nodeid=request.node.nodeid)
    # @pytest.mark.testbed_events("orders.created", backend="nats"): listening starts before the test body.
    for marker in reversed(list(request.node.iter_markers("testbed_events"))):
        for topic in marker.args:
            recorder.listen(str(topic), **marker.kwargs)
    try:
        yield recorder
    finally:
        recorder.close()
