"""What an engine is: its settings, binary, server, endpoint, and per-worker and per-test reset.

An engine module defines a subclass of :class:`Engine` and an instance named ``ENGINE``; the registry
(``testbed.engines``) finds it. The lifecycle of a local server (reap, discover and pin, stage, run
folder, data cache, spawn with port retry, readiness, log tail, stop, record) lives in
``testbed.runners.managed``; an engine module keeps only what is specific to it.

Engine modules must stay cheap to import (the registry imports them to read their settings class while
pytest configures): client libraries are imported inside the functions that use them.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Protocol

from testbed.config import ServiceSettings
from testbed.errors import ConfigError, ServerDiedError
from testbed.runners.binaries import Candidate


class Running(Protocol):
    """A server a run has started or attached to."""

    def endpoint(self) -> Endpoint: ...

    def stop(self) -> None: ...

    def describe(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class Endpoint:
    """How to reach a running server: plain data, so the xdist controller can hand it to workers.

    ``url`` is what an application is given; ``pid`` is 0 for a server testbed did not start (then
    liveness is "still reachable").
    """

    label: ClassVar[str] = "server"
    boundary: ClassVar[str] = "server"

    host: str
    port: int
    version: str
    binary: str
    source: str
    pid: int
    start_time: int | None
    log_path: str

    @property
    def url(self) -> str:
        raise NotImplementedError

    def alive(self) -> bool:
        if not self.pid:
            try:
                with socket.create_connection((self.host, self.port), timeout=2):
                    return True
            except OSError:
                return False
        from testbed.runners.reaper import is_same_process

        return is_same_process(self.pid, self.start_time)

    def log_tail(self, lines: int = 25) -> str:
        if not self.log_path:
            return "    (a server testbed did not start: its log is wherever its owner keeps it)"
        from testbed.runners.process import log_tail

        return log_tail(Path(self.log_path), lines)

    def check_alive(self, what: str = "the test", settle: float = 0.0) -> None:
        """Raise ServerDiedError with the server's last log lines if it is gone.

        ``settle``: after a dropped connection, give a dying server that long to show up as exited.
        """
        from testbed.runners.reaper import gone_within

        if self.alive() and not (settle and self.pid and gone_within(self.pid, self.start_time, settle)):
            return
        if not self.pid:
            raise ServerDiedError(
                f"the existing {self.label} at {self.host}:{self.port} no longer accepts connections ({what}).",
                boundary=self.boundary,
            )
        raise ServerDiedError(
            f"{self.label} (pid {self.pid}, port {self.port}) is no longer running ({what}). "
            f"Its last log lines ({self.log_path}):\n{self.log_tail()}",
            boundary=self.boundary,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Endpoint:
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in known}
        return cls(**values)


def refuse_shared_namespace(label: str, what: str, namespace: str, workers: tuple[str | None, ...]) -> None:
    """An existing broker gives every xdist worker the URL's own namespace, and a test's cleanup removes the
    streams or queues that appeared there during the test: with two workers, one would remove the other's."""
    busy = [w for w in workers if w]
    if len(busy) > 1:
        raise ConfigError(
            f"runner = 'existing' for {label} puts the {len(busy)} xdist workers in the URL's one {namespace}, and "
            f"each test's cleanup removes the {what} that appeared there during it, so one worker would remove "
            f"another's. Run the {label} tests without -n, or use runner = 'local' (a {namespace} per worker)."
        )


class Engine:
    """One kind of server testbed can run: subclass per engine, one instance (``ENGINE``) per module."""

    name: ClassVar[str]
    label: ClassVar[str]
    settings_class: ClassVar[type[ServiceSettings]] = ServiceSettings
    endpoint_class: ClassVar[type[Endpoint]] = Endpoint
    runners: ClassVar[tuple[str, ...]] = ("local", "existing")
    # Fixtures the plugin derives for this engine: `testbed_<name>_server` always; these when set.
    url_fixture: ClassVar[str | None] = None  # the worker's namespace, reset around each test
    client_fixture: ClassVar[str | None] = None  # a client on that namespace
    # Engines with fixtures of their own family (SQL) set the plugin module that defines them.
    plugin: ClassVar[str | None] = None
    # The programs a server of this engine runs (the unit-stage guard refuses to spawn them).
    programs: ClassVar[tuple[str, ...]] = ()
    # Modules a test process imports to use this engine's server (an xdist worker imports them while it
    # waits for the controller's answer).
    worker_modules: ClassVar[tuple[str, ...]] = ()

    # -- binaries ----------------------------------------------------------------------------------
    def discover(self, settings: ServiceSettings) -> list[Candidate]:
        """Every binary found, in discovery order."""
        return []

    def choose_binary(self, settings: ServiceSettings) -> Candidate:
        """The binary a local server of these settings would run."""
        raise ConfigError(f"{self.label} has no local binary: use runner = 'existing'.")

    # -- servers -----------------------------------------------------------------------------------
    def start(self, settings: ServiceSettings, root: Path, workers: tuple[str | None, ...] = (None,)) -> Running:
        """Start (or, with runner = 'existing', attach to) a server for a run with these xdist workers."""
        if settings.runner == "existing":
            return self.attach(settings, root, workers)
        return self.start_local(settings, root, workers)

    def start_local(self, settings: ServiceSettings, root: Path, workers: tuple[str | None, ...]) -> Running:
        raise ConfigError(f"{self.label} cannot run as a local process: use runner = 'existing'.")

    def attach(self, settings: ServiceSettings, root: Path, workers: tuple[str | None, ...]) -> Running:
        raise ConfigError(f"runner = 'existing' is not available for {self.label}: use runner = 'local'.")

    # -- servers kept between runs (runners/keeper.py) -------------------------------------------------
    reusable: ClassVar[bool] = False  # can several runs share one live server, each in a namespace of its own?
    # Part of a kept server's key: changed when the way testbed starts the server changes (a run adopts only
    # servers started the way it would start them).
    kept_shape: ClassVar[str] = ""

    def content_key(self, settings: ServiceSettings, root: Path) -> str:
        """What a kept server should preload for this run (a migrated template), "empty" for nothing."""
        return "empty"

    def keep(self, settings: ServiceSettings, content_key: str) -> Running:
        """Start a server for a keeper (no migrations run here: only a cached data folder is used)."""
        return self.start_local(settings, Path.cwd(), (None,))

    def adopt(self, settings: ServiceSettings, root: Path, workers: tuple[str | None, ...],
              kept: Mapping[str, Any], kept_content: str) -> Running:
        """Use a kept server for this run, in a namespace of the run's own."""
        raise NotImplementedError

    def endpoint_from_dict(self, data: Mapping[str, Any]) -> Endpoint:
        return self.endpoint_class.from_dict(data)

    def for_worker(self, endpoint: Endpoint, worker_id: str | None) -> Endpoint:
        """The endpoint as one xdist worker sees it (its own namespace on the shared server)."""
        return endpoint

    def env_view(self, endpoint: Endpoint, worker_id: str | None) -> dict[str, str]:
        """What ``{<engine>.<key>}`` in [tool.testbed.env] can name, for one xdist worker."""
        internal = {"pid", "start_time", "log_path", "binary", "source", "owner", "existing_url"}
        view = {f.name: str(getattr(endpoint, f.name)) for f in fields(endpoint)
                if f.name not in internal and isinstance(getattr(endpoint, f.name), str | int)
                and not isinstance(getattr(endpoint, f.name), bool)}
        view["url"] = endpoint.url
        return view

    # -- per test ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def test_scope(self, endpoint: Endpoint, nodeid: str) -> Iterator[str]:
        """The URL of the worker's namespace for one test; what the test left there is removed after it."""
        endpoint.check_alive(f"setting up {nodeid}")
        yield endpoint.url

    @contextlib.contextmanager
    def client(self, endpoint: Endpoint, url: str) -> Iterator[Any]:
        """A client on the test's ``url`` for the client fixture (closed after the test)."""
        raise NotImplementedError
        yield  # pragma: no cover


class SqlEngine(Engine):
    """An engine with migrations and per-test SQL isolation (PostgreSQL, MariaDB/MySQL)."""

    def worker_database_name(self, endpoint: Endpoint, worker_id: str | None) -> str:
        """The name of the worker's database (``testbed_gw0``; ``testbed_main`` without xdist)."""
        from testbed.isolation.context import worker_db_name

        return worker_db_name(worker_id or "main", str(getattr(endpoint, "db_prefix", "testbed")))

    def database_url(self, endpoint: Endpoint, dbname: str) -> str:
        raise NotImplementedError

    def env_view(self, endpoint: Endpoint, worker_id: str | None) -> dict[str, str]:
        """``url`` is the worker's own database (cloned from the migrated template), as the tests see it."""
        return self.database_view(endpoint, self.worker_database_name(endpoint, worker_id))

    def database_view(self, endpoint: Endpoint, dbname: str) -> dict[str, str]:
        """The [tool.testbed.env] view of one database on the server (a worker's, or the template while it
        is migrated)."""
        view = super().env_view(endpoint, None)
        view["server_url"] = endpoint.url
        view["database"] = dbname
        view["url"] = self.database_url(endpoint, dbname)
        return view

    def worker_database(self, endpoint: Endpoint, worker_id: str, settings: ServiceSettings) -> Any:
        """The worker's database cloned from the migrated template (``.url``, ``.dbname``, ``.close()``)."""
        raise NotImplementedError


def worker_ids(count: int) -> tuple[str | None, ...]:
    """The xdist worker ids of a run with ``count`` workers (0: no xdist)."""
    return tuple(f"gw{i}" for i in range(count)) if count else (None,)
