"""Per-run state: the validated settings and the servers this process uses.

Without pytest-xdist, the first fixture that needs an engine starts its server here (once per session);
under xdist, workers never start servers: they ask the controller's broker (``testbed.plugin.xdist``),
which starts each engine once for the whole run, when a selected test first needs it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from testbed.config import Settings, load_settings
from testbed.errors import TestbedError, from_wire

if TYPE_CHECKING:
    from testbed.engines.base import Endpoint, Running

_settings_key = pytest.StashKey[Settings]()
_services_key = pytest.StashKey["SessionServices"]()


def settings(config: pytest.Config) -> Settings:
    """The project's [tool.testbed] settings (read once per run)."""
    if _settings_key not in config.stash:
        config.stash[_settings_key] = load_settings(Path(str(config.rootpath)))
    return config.stash[_settings_key]


def worker_id(config: pytest.Config) -> str | None:
    """The xdist worker id ("gw0"), None without xdist."""
    # From xdist's workerinput, not the env var: a pytester run inside a worker inherits the env var.
    workerinput = getattr(config, "workerinput", None)
    return str(workerinput["workerid"]) if workerinput else None


def reuse_enabled(config: pytest.Config) -> bool:
    """--testbed-reuse / --testbed-no-reuse (an explicit choice, also on CI), else off where CI is set, else
    [tool.testbed] reuse / TESTBED_REUSE, else on."""
    said = getattr(config.option, "testbed_reuse", None)
    if said is None:
        said = getattr(getattr(config, "known_args_namespace", None), "testbed_reuse", None)
    return bool(said) if said is not None else settings(config).reuse_servers()


def top_level(config: pytest.Config, key: str, default: Any) -> Any:
    """A top-level [tool.testbed] value without validating the whole table when nothing did yet (validating it
    imports the configured engines, which a run that uses no service must not pay for)."""
    if _settings_key in config.stash:
        return getattr(config.stash[_settings_key], key)
    from testbed.config import read_table

    return read_table(Path(str(config.rootpath)))[1].get(key, default)


def capture_enabled(config: pytest.Config) -> bool:
    """Whether tests get a transcript: [tool.testbed] capture (TESTBED_CAPTURE), unless --testbed-no-capture."""
    import os

    from testbed.config import FALSE_WORDS

    if config.getoption("--testbed-no-capture", default=False):
        return False
    env = os.environ.get("TESTBED_CAPTURE", "").strip().lower()
    if env:
        return env not in FALSE_WORDS
    return top_level(config, "capture", True) is not False


def start_for_run(config: pytest.Config, name: str,
                  workers: tuple[str | None, ...]) -> tuple[Running, Callable[[], None]]:
    """Start engine ``name`` for this run (or adopt a kept server); the server and how to let it go."""
    from testbed import engines

    s = settings(config)
    engine = engines.get(name)
    service = s.service(name)
    if reuse_enabled(config) and engine.reusable and service.runner == "local":
        from testbed.runners.keeper import acquire

        # The binary this run would start is part of the key: a new PostgreSQL on PATH, or a pin changed,
        # means a server of its own, not the kept one (discovery remembers versions: about a millisecond).
        chosen = engine.choose_binary(service)
        content_key = engine.content_key(service, s.root)
        lease = acquire(name, service, content_key, s.reuse_idle, max(service.startup_timeout, 60.0),
                        binary=f"{chosen.path} {chosen.version}")
        try:
            adopted = engine.adopt(service, s.root, workers, {**lease.endpoint, "run_content_key": content_key},
                                   str(lease.record.get("content_key")))
        except BaseException:
            lease.close()
            raise

        def let_go() -> None:
            adopted.stop()
            lease.close()  # the keeper stops the server once no run has leased it for reuse_idle seconds

        return adopted, let_go
    running = engine.start(service, s.root, workers)
    return running, running.stop


class SessionServices:
    """The servers of one pytest process, by engine name."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._endpoints: dict[str, Endpoint] = {}
        self._running: dict[str, Callable[[], None]] = {}
        self._errors: dict[str, TestbedError] = {}
        self.started: list[Mapping[str, str]] = []  # describe() of servers this process started
        self._log_sources: list[Any] = []

    def endpoint(self, name: str) -> Endpoint:
        """The server of engine ``name`` (started on first use, here or by the xdist controller)."""
        if name in self._endpoints:
            return self._endpoints[name]
        if name in self._errors:  # a start that failed once fails every test that needs it, at once
            raise self._errors[name]
        import time

        from testbed import engines

        started = time.perf_counter()
        broker = getattr(self.config, "workerinput", {}).get("testbed_broker")
        try:
            if broker is not None:
                from testbed.plugin.xdist import ask_broker

                answer = ask_broker(broker, name)
                engine = engines.get(name)
                if "error" in answer:
                    raise from_wire(answer["error"])
                endpoint = engine.endpoint_from_dict(answer["endpoint"])
            else:
                running, stop = start_for_run(self.config, name, (None,))
                self._running[name] = stop
                self.started.append(running.describe())
                endpoint = running.endpoint()
        except TestbedError as exc:
            self._errors[name] = exc
            raise
        self._endpoints[name] = endpoint
        self._observe_started(name, endpoint, (time.perf_counter() - started) * 1000)
        return endpoint

    def _observe_started(self, name: str, endpoint: Endpoint, ms: float) -> None:
        """The per-test transcript bills this start to the run, not to the test that happened to need it first;
        the server's log lines (warnings, errors) join the transcripts of the tests that run meanwhile."""
        from testbed import observe

        observe.publish("services", "start", f"{endpoint.label} ready in {ms:.0f} ms", engine=name, ms=round(ms, 1))
        if endpoint.log_path and name != "postgres" and capture_enabled(self.config):
            from testbed.runners.log_follow import ServerLogSource

            self._log_sources.append(ServerLogSource(name, endpoint.log_path))

    def worker_endpoint(self, name: str) -> Endpoint:
        """The server as this xdist worker sees it: its own namespace (database, account, vhost)."""
        from testbed import engines

        return engines.get(name).for_worker(self.endpoint(name), worker_id(self.config))

    def stop(self) -> None:
        """Stop what this process started; let engines close what they opened here (e.g. watchers)."""
        from testbed import engines

        for source in self._log_sources:
            source.close()
        self._log_sources.clear()
        for name in list(self._endpoints):
            close = getattr(engines.get(name), "close", None)
            if close is not None:
                close()
        for stop in reversed(list(self._running.values())):
            stop()
        self._running.clear()
        self._endpoints.clear()


def has_endpoints(config: pytest.Config) -> bool:
    """Whether this process uses a server already (started here, or handed over by the xdist controller)."""
    return _services_key in config.stash and bool(config.stash[_services_key]._endpoints)


def services(config: pytest.Config) -> SessionServices:
    """This process's servers (the registry of what it started or was handed)."""
    if _services_key not in config.stash:
        config.stash[_services_key] = SessionServices(config)
    return config.stash[_services_key]


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    if _services_key in config.stash:
        config.stash[_services_key].stop()


def summary_lines(config: pytest.Config) -> list[Mapping[str, Any]]:
    """describe() of every server this run started (the controller's, under xdist)."""
    found = list(services(config).started) if _services_key in config.stash else []
    from testbed.plugin.xdist import broker_started

    return found + broker_started(config)
