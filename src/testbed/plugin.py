"""pytest glue: options, markers and fixtures that call testbed's library layers. Nothing else."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "testbed(isolation=..., leak_check=..., reason=...): per-test testbed options",
    )


# --- MariaDB/MySQL (testbed.services.mysql) ---
# Self-contained: its own stash keys, and hook implementations under their own names (``specname``), so it
# adds to the rest of this module without touching it.

import json as _mysql_json  # noqa: E402
from collections.abc import Iterator as _MysqlIterator  # noqa: E402
from pathlib import Path as _MysqlPath  # noqa: E402
from typing import Any as _MysqlAny  # noqa: E402

from testbed.config import ISOLATION_STRATEGIES as _MYSQL_STRATEGIES  # noqa: E402
from testbed.config import Settings as _MysqlSettings  # noqa: E402
from testbed.config import load_settings as _mysql_load_settings  # noqa: E402
from testbed.errors import ConfigError as _MysqlConfigError  # noqa: E402

_MYSQL_WORKERINPUT = "testbed_mysql"
_mysql_settings_key = pytest.StashKey[_MysqlSettings]()
_mysql_server_key = pytest.StashKey[_MysqlAny]()
_mysql_error_key = pytest.StashKey[str]()
_MYSQL_WORKERINPUT_ERROR = "testbed_mysql_error"


def _mysql_settings(config: pytest.Config) -> _MysqlSettings:
    if _mysql_settings_key not in config.stash:
        config.stash[_mysql_settings_key] = _mysql_load_settings(_MysqlPath(str(config.rootpath)))
    return config.stash[_mysql_settings_key]


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
