"""The ``events`` fixture: capture what the code under test publishes to a broker, without sleeping."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from testbed.plugin.session import settings, worker_id


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "testbed_events(*topics, backend=None, **options): the `events` fixture listens to these topics "
        "before the test starts",
    )


def _diagnose(server: Any) -> Callable[[], str]:
    def diagnose() -> str:
        try:
            server.check_alive("while a test waited for events", settle=2.0)
        except Exception as exc:
            return str(exc)
        return "The server process is still running; the connection itself was closed."

    return diagnose


@pytest.fixture
def events(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Capture broker messages: ``events.listen(topic)`` before the action, ``events.expect(topic, ...)`` after.

    Also ``events.consume(topic, handler, faults=[...])`` (a test consumer that fails or crashes before
    acknowledging, so the broker redelivers), ``events.inject(topic, messages)`` (duplicates, out of order)
    and ``events.publish`` / ``await events.publish_async``.
    """
    from testbed import engines
    from testbed.events import EventRecorder
    from testbed.events.backend import BACKENDS

    configured = settings(request.config).services
    default = next((name for name in configured if name in BACKENDS), "nats")

    def opener(name: str) -> Callable[[], Any]:
        kind = BACKENDS[name]

        def open_backend() -> Any:
            # The server fixtures are requested now, so the backend's close (registered next) runs before
            # their per-test resets: no subscription sees its queue vanish.
            engine = engines.get(kind.engine)
            server = request.getfixturevalue(f"testbed_{kind.engine}_server")
            url = request.getfixturevalue(engine.url_fixture) if engine.url_fixture else server.url
            backend = kind.open(url, _diagnose(server))
            request.node.addfinalizer(recorder.close)
            return backend

        return open_backend

    recorder = EventRecorder({name: opener(name) for name in BACKENDS}, default_backend=default,
                             worker=worker_id(request.config), nodeid=request.node.nodeid)
    # @pytest.mark.testbed_events("orders.created", backend="nats"): listening starts before the test body.
    for marker in reversed(list(request.node.iter_markers("testbed_events"))):
        for topic in marker.args:
            recorder.listen(str(topic), **marker.kwargs)
    try:
        yield recorder
    finally:
        recorder.close()
