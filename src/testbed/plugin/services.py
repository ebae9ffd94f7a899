"""Every engine's fixtures, derived from the registry: ``testbed_<engine>_server`` (the session's server as
this worker sees it) and, where the engine defines them, a per-test URL fixture (the worker's namespace,
reset around each test: ``redis_url``, ``nats_url``, ``rabbitmq_url``, ...) and a client fixture on it
(``redis``, ``rabbitmq_connection``, ...). An engine added through the ``testbed.engines`` entry point gets
them without a line here.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

from testbed.plugin.session import services

if TYPE_CHECKING:
    from testbed.engines.base import Engine


def engine_fixtures(engine: Engine) -> ModuleType:
    """The fixtures of one engine, as a plugin module pytest collects fixtures from."""
    name = engine.name

    def server(request: pytest.FixtureRequest) -> Any:
        return services(request.config).worker_endpoint(name)

    server.__doc__ = (f"The session's {engine.label} server as this worker sees it (an endpoint: .url, .version, "
                      "...); started on first use, once per run (by the xdist controller under -n).")
    found: dict[str, Any] = {"server": pytest.fixture(scope="session", name=f"testbed_{name}_server")(server)}
    url_fixture, client_fixture = engine.url_fixture, engine.client_fixture
    if url_fixture:
        def url(request: pytest.FixtureRequest) -> Iterator[str]:
            endpoint = request.getfixturevalue(f"testbed_{name}_server")
            with engine.test_scope(endpoint, request.node.nodeid) as value:
                yield value

        url.__doc__ = f"The URL of this worker's {engine.label} namespace; what a test leaves there goes after it."
        found["url"] = pytest.fixture(name=url_fixture)(url)
        if client_fixture:
            def client(request: pytest.FixtureRequest) -> Iterator[Any]:
                url = request.getfixturevalue(url_fixture)
                with engine.client(request.getfixturevalue(f"testbed_{name}_server"), url) as c:
                    yield c

            client.__doc__ = f"A {engine.label} client on this worker's namespace, closed after the test."
            found["client"] = pytest.fixture(name=client_fixture)(client)
    module = ModuleType(f"testbed.plugin.services.{name}", f"testbed's fixtures for {engine.label}")
    for key, value in found.items():
        setattr(module, key, value)
    return module


def pytest_configure(config: pytest.Config) -> None:
    from testbed import engines

    for name in engines.names():
        plugin_name = f"testbed-engine-{name}"
        if not config.pluginmanager.has_plugin(plugin_name):
            engine = engines.get(name)
            config.pluginmanager.register(engine_fixtures(engine), plugin_name)
            if engine.plugin and not config.pluginmanager.has_plugin(engine.plugin):
                config.pluginmanager.import_plugin(engine.plugin)
