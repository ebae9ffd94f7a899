"""Settings hand-off: ``[tool.testbed.env]`` sets environment variables from the running services before
conftest files and test modules are imported, for apps that read their settings at import time::

    [tool.testbed.env]
    DATABASE_URL = "{postgres.sqlalchemy_url}"    # this xdist worker's own database
    REDIS_URL = "{redis.url}"
    PAYMENT_BASE_URL = "{http.url}"

The services a template names start here, before the first conftest is imported (under pytest-xdist, in
the controller's broker, once for the run; each worker gets its own values: its database, its Redis
database, its NATS account). Unknown placeholders are an error naming the valid ones.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from testbed.errors import ConfigError
from testbed.handoff import render, templates
from testbed.plugin.session import services, settings

HANDOFF = "TESTBED_ENV_HANDOFF"  # the controller's per-worker values, inherited by the workers it spawns
_saved_key = pytest.StashKey[dict[str, str | None]]()
_stub_key = pytest.StashKey[Any]()


def _check_services(refs: dict[str, list[tuple[str, str]]]) -> list[str]:
    from testbed import engines

    names = {engine for pairs in refs.values() for engine, _ in pairs}
    for var, pairs in refs.items():
        for engine, _ in pairs:
            if engine != "http" and engine not in engines.names():
                valid = ", ".join([*engines.names(), "http"])
                raise ConfigError(f"[tool.testbed.env] {var}: unknown service {engine!r} in {{{engine}...}}; "
                                  f"valid: {valid}.")
    return sorted(n for n in names if n != "http")


def _check_not_django_managed(config: pytest.Config, refs: dict[str, list[tuple[str, str]]]) -> None:
    """An engine with migrations = "django" cannot be handed over: its template is built by Django's own
    migrate, so it exists only after Django's settings are read, and those settings are what the variable
    is for. testbed points settings.DATABASES at its databases itself; a constant satisfies an import."""
    for var, pairs in refs.items():
        for engine, _ in pairs:
            if getattr(settings(config).engines.get(engine), "migrations", None) == "django":
                raise ConfigError(
                    f"[tool.testbed.env] {var} names {{{engine}...}}, whose migrations = 'django': its template "
                    "is built by Django's migrate, after Django's settings are read, so it cannot be handed to "
                    f"them. testbed points settings.DATABASES at its own databases; if your settings need {var} "
                    f"to import, give it a constant: {var} = \"postgres://testbed-replaces-this/unused\".")


def planned_workers(config: pytest.Config) -> tuple[str | None, ...]:
    """The xdist workers this run will have, known before xdist resolves them (as xdist counts them)."""
    from testbed.engines.base import worker_ids

    ns = config.known_args_namespace
    n: Any = getattr(ns, "numprocesses", None)
    if not n or getattr(ns, "dist", "no") == "no" and not n:
        return (None,)
    if n in ("auto", "logical"):
        if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS", "").isdigit():
            n = int(os.environ["PYTEST_XDIST_AUTO_NUM_WORKERS"])
        else:
            try:
                import psutil

                n = psutil.cpu_count(logical=n == "logical") or psutil.cpu_count() or 1
            except ImportError:
                n = len(os.sched_getaffinity(0)) or 1
    if getattr(ns, "maxprocesses", None):
        n = min(int(n), int(ns.maxprocesses))
    return worker_ids(int(n)) if int(n) > 0 else (None,)


def _stub_view(config: pytest.Config) -> dict[str, str]:
    from testbed.stubs import StubServer

    if _stub_key not in config.stash:
        http = settings(config).http
        root = http.mappings
        config.stash[_stub_key] = StubServer(root_dir=root, https=http.https).start()
    server = config.stash[_stub_key]
    view = {"url": server.url, "port": str(server.port)}
    if getattr(server, "https_port", None):
        view["https_url"] = str(server.https_url)
    return view


def early_stub_server(config: pytest.Config) -> Any:
    """The stub server the hand-off started (the http fixtures use it), None if it started none."""
    return config.stash.get(_stub_key, None)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    from testbed.errors import TestbedError

    try:
        _hand_off(early_config)
    except TestbedError as exc:  # before any test: pytest's own "ERROR: ..." line, no traceback of ours
        raise pytest.UsageError(str(exc)) from None


def _declared(config: pytest.Config) -> bool:
    """Whether the project has a [tool.testbed.env] table: a TOML read, not the settings' validation (which
    imports the configured engines), so a project without one pays nothing here."""
    from pathlib import Path

    from testbed.config import read_table

    return "env" in read_table(Path(str(config.rootpath)))[1]


def _configured(config: pytest.Config) -> bool:
    """Whether the project has a [tool.testbed] table at all (a TOML read)."""
    from pathlib import Path

    from testbed.config import read_table

    return bool(read_table(Path(str(config.rootpath)))[1])


def _hand_off(early_config: pytest.Config) -> None:
    if not _configured(early_config):
        return
    if not _declared(early_config):
        # Validated before any test, whether or not a selected test needs a server: a typo in [tool.testbed]
        # is a usage error now, not a setup error of the first database test. Not kept: a conftest imported
        # after this may still set TESTBED_* variables, which the settings read later must see.
        from pathlib import Path

        from testbed.config import load_settings

        load_settings(Path(str(early_config.rootpath)))
        return
    table = settings(early_config).tables.get("env")
    if not table:
        return
    refs = templates(table)
    needed = _check_services(refs)
    _check_not_django_managed(early_config, refs)
    uses_http = any(engine == "http" for pairs in refs.values() for engine, _ in pairs)
    root = str(early_config.rootpath)
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    handed = json.loads(os.environ.get(HANDOFF, "{}"))
    if worker and handed.get("root") == root and worker in handed.get("workers", {}):
        views = handed["workers"][worker]
    else:
        views = _start_and_view(early_config, needed)
    if uses_http:
        views = {**views, "http": _stub_view(early_config)}
    values = render(table, views)
    saved = early_config.stash.setdefault(_saved_key, {})
    for var, value in values.items():
        saved.setdefault(var, os.environ.get(var))
        os.environ[var] = value


def _start_and_view(config: pytest.Config, needed: list[str]) -> dict[str, dict[str, str]]:
    """Start the services the templates name (here, or in the xdist broker) and hand workers their values."""
    from testbed import engines

    workers = planned_workers(config)
    if workers == (None,):
        session = services(config)
        return {name: engines.get(name).env_view(session.endpoint(name), None) for name in needed}
    from testbed.plugin.xdist import early_broker

    broker = early_broker(config, workers)
    endpoints = broker.endpoints(needed)
    per_worker = {w: {name: engines.get(name).env_view(engines.get(name).for_worker(ep, w), w)
                      for name, ep in endpoints.items()} for w in workers if w}
    saved = config.stash.setdefault(_saved_key, {})
    saved.setdefault(HANDOFF, os.environ.get(HANDOFF))
    os.environ[HANDOFF] = json.dumps({"root": str(config.rootpath), "workers": per_worker})
    return per_worker[str(workers[0])]  # the controller imports conftest files too: give it gw0's


def pytest_configure(config: pytest.Config) -> None:
    # Each process that runs tests creates its databases now: an app configured by the hand-off may connect
    # before any testbed fixture runs.
    table = settings(config).tables.get("env") if _declared(config) else None
    if not table or (os.environ.get("PYTEST_XDIST_WORKER") is None and planned_workers(config) != (None,)):
        return
    from testbed import engines
    from testbed.engines.base import SqlEngine
    from testbed.plugin.sql import worker_database

    for name in _check_services(templates(table)):
        if isinstance(engines.get(name), SqlEngine):
            worker_database(config, name)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    server = config.stash.get(_stub_key, None)
    if server is not None:
        server.stop()
    for var, value in config.stash.get(_saved_key, {}).items():
        if value is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = value
