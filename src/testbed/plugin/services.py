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
    from testbed.engines import Entry


def engine_fixtures(name: str, entry: Entry) -> ModuleType:
    """The fixtures of one engine, as a plugin module pytest collects fixtures from. The engine's module is
    imported when a test first asks for one of them, not before."""
    from testbed import engines

    def server(request: pytest.FixtureRequest) -> Any:
        return services(request.config).worker_endpoint(name)

    server.__doc__ = (f"The session's {entry.label} server as this worker sees it (an endpoint: .url, .version, "
                      "...); started on first use, once per run (by the xdist controller under -n).")
    found: dict[str, Any] = {"server": pytest.fixture(scope="session", name=f"testbed_{name}_server")(server)}
    url_fixture, client_fixture = entry.url_fixture, entry.client_fixture
    if url_fixture:
        def url(request: pytest.FixtureRequest) -> Iterator[str]:
            endpoint = request.getfixturevalue(f"testbed_{name}_server")
            with engines.get(name).test_scope(endpoint, request.node.nodeid) as value:
                yield value

        url.__doc__ = f"The URL of this worker's {entry.label} namespace; what a test leaves there goes after it."
        found["url"] = pytest.fixture(name=url_fixture)(url)
        if client_fixture:
            def client(request: pytest.FixtureRequest) -> Iterator[Any]:
                url = request.getfixturevalue(url_fixture)
                with engines.get(name).client(request.getfixturevalue(f"testbed_{name}_server"), url) as c:
                    yield c

            client.__doc__ = f"A {entry.label} client on this worker's namespace, closed after the test."
            found["client"] = pytest.fixture(name=client_fixture)(client)
    module = ModuleType(f"testbed.plugin.services.{name}", f"testbed's fixtures for {entry.label}")
    for key, value in found.items():
        setattr(module, key, value)
    return module


def pytest_configure(config: pytest.Config) -> None:
    from testbed import engines

    for name in engines.names():
        plugin_name = f"testbed-engine-{name}"
        if not config.pluginmanager.has_plugin(plugin_name):
            entry = engines.entry(name)
            config.pluginmanager.register(engine_fixtures(name, entry), plugin_name)
            if entry.plugin and not config.pluginmanager.has_plugin(entry.plugin):
                config.pluginmanager.import_plugin(entry.plugin)
