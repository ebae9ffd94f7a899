"""pytest-xdist: one server per engine for the whole run, started by the controller when a worker first
needs it; workers never start servers of their own.

The controller runs a small broker on a unix socket in a private folder; its address is in every
worker's ``workerinput``. A worker asks for an engine by name and gets the server's endpoint, or the
error its start raised, in one wire format (``testbed.errors.to_wire``): so a selected test needs an
engine before it starts, a run that selects only unit tests starts nothing, and a server that could not
start fails the tests that need it with its message instead of crashing xdist.

Each server is started and stopped on a thread of its own that lives for the whole run: a server's
parent-death signal fires when the thread that started it ends.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import tempfile
import threading
from collections.abc import Mapping
from typing import Any

import pytest

from testbed.errors import ServerStartError, TestbedError, to_wire

_broker_key = pytest.StashKey["ServiceBroker"]()
WORKERINPUT = "testbed_broker"


class ServiceBroker:
    """Starts each engine's server once, on request, for every worker of the run."""

    def __init__(self, config: pytest.Config, workers: tuple[str | None, ...]) -> None:
        self.config = config
        self.workers = workers
        self.folder = tempfile.mkdtemp(prefix="testbed-broker-")  # 0700: only this user can connect
        self.address = os.path.join(self.folder, "broker.sock")
        self.token = secrets.token_hex(16)
        self.started: list[Mapping[str, str]] = []
        self._answers: dict[str, dict[str, Any]] = {}
        self._ready: dict[str, threading.Event] = {}
        self._owners: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._socket.bind(self.address)
        self._socket.listen(64)
        self._accepting = threading.Thread(target=self._accept, name="testbed-broker", daemon=True)
        self._accepting.start()

    # -- the socket ----------------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._socket.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), name="testbed-broker-request", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rwb") as stream:
            try:
                request = json.loads(stream.readline())
                if request.get("token") != self.token:
                    answer: dict[str, Any] = {"error": to_wire(TestbedError("bad broker token", boundary="xdist"))}
                else:
                    answer = self.acquire(str(request["engine"]))
            except (ValueError, KeyError) as exc:
                answer = {"error": to_wire(TestbedError(f"bad broker request: {exc}", boundary="xdist"))}
            stream.write(json.dumps(answer).encode() + b"\n")
            stream.flush()

    # -- servers -------------------------------------------------------------------------------------
    def acquire(self, name: str) -> dict[str, Any]:
        """The answer for engine ``name``: {"endpoint": ...} or {"error": ...}; starts it on first request."""
        with self._lock:
            ready = self._ready.get(name)
            if ready is None:
                ready = self._ready[name] = threading.Event()
                owner = threading.Thread(target=self._own, args=(name, ready), name=f"testbed-{name}", daemon=True)
                self._owners.append(owner)
                owner.start()
        ready.wait()
        return self._answers[name]

    def _own(self, name: str, ready: threading.Event) -> None:
        from testbed.plugin.session import start_for_run

        stop = None
        try:
            running, stop = start_for_run(self.config, name, self.workers)
            self._answers[name] = {"endpoint": running.endpoint().to_dict()}
            self.started.append(running.describe())
        except TestbedError as exc:
            self._answers[name] = {"error": to_wire(exc)}
        except Exception as exc:  # a bug of ours must still reach the tests, not hang them
            self._answers[name] = {"error": to_wire(ServerStartError(f"{type(exc).__name__}: {exc}", boundary=name))}
        finally:
            ready.set()
        self._stopping.wait()
        if stop is not None:
            stop()

    def endpoints(self, names: list[str]) -> dict[str, Any]:
        """The server-level endpoints of ``names`` (started now if needed); a failed start raises its error."""
        from testbed import engines
        from testbed.errors import from_wire

        found = {}
        for name in names:
            answer = self.acquire(name)
            if "error" in answer:
                raise from_wire(answer["error"])
            found[name] = engines.get(name).endpoint_from_dict(answer["endpoint"])
        return found

    def close(self) -> None:
        """Stop every server (each on the thread that started it) and the broker."""
        self._stopping.set()
        try:
            self._socket.close()
        except OSError:
            pass
        for owner in self._owners:
            owner.join(60)
        shutil.rmtree(self.folder, ignore_errors=True)


def request_service(broker: Mapping[str, str], name: str, timeout: float = 900.0) -> dict[str, Any]:
    """Worker side: ask the controller's broker for engine ``name``."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(broker["address"])
            sock.sendall(json.dumps({"engine": name, "token": broker["token"]}).encode() + b"\n")
            with sock.makefile("rb") as stream:
                line = stream.readline()
    except OSError as exc:
        raise ServerStartError(
            f"could not reach the xdist controller's service broker at {broker.get('address')} ({exc}); workers "
            "never start servers of their own.", boundary="xdist") from None
    answer: dict[str, Any] = json.loads(line)
    return answer


class XdistHooks:
    """Registered only when pytest-xdist is active, on the controller."""

    @pytest.hookimpl
    def pytest_configure_node(self, node: Any) -> None:
        from testbed.engines.base import worker_ids

        config = node.config
        if _broker_key not in config.stash:
            config.stash[_broker_key] = ServiceBroker(config, worker_ids(len(config.option.tx or []) or 1))
        broker = config.stash[_broker_key]
        node.workerinput[WORKERINPUT] = {"address": broker.address, "token": broker.token}


def early_broker(config: pytest.Config, workers: tuple[str | None, ...]) -> ServiceBroker:
    """The controller's broker, made before xdist spawns its workers (the settings hand-off needs it)."""
    if _broker_key not in config.stash:
        config.stash[_broker_key] = ServiceBroker(config, workers)
    return config.stash[_broker_key]


def broker_started(config: pytest.Config) -> list[Mapping[str, str]]:
    """What the controller's broker started (for the summary)."""
    broker = config.stash.get(_broker_key, None)
    return list(broker.started) if broker is not None else []


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput") and config.pluginmanager.hasplugin("xdist") \
            and not config.pluginmanager.has_plugin("testbed-xdist"):
        config.pluginmanager.register(XdistHooks(), "testbed-xdist")


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Worker side: as soon as this worker knows its selected tests need an engine, ask the controller for it
    on a thread (its first test would otherwise wait for the start, or the adoption of a kept server, then),
    and import what the worker will use it with meanwhile. Every selected test runs on some worker, so the
    server is one a selected test needs; the first test's own request then finds it ready. Errors are left to
    that request, which reports them."""
    config = session.config
    broker = getattr(config, "workerinput", {}).get(WORKERINPUT)
    if broker is None or not session.items:
        return
    for name in engines_needed(session.items, config):
        threading.Thread(target=_ask_early, args=(broker, name), name=f"testbed-early-{name}", daemon=True).start()


def engines_needed(items: list[pytest.Item], config: pytest.Config) -> list[str]:
    """The engines the fixtures of ``items`` need (a server fixture in their closure; Django's test
    databases when testbed supplies them)."""
    from testbed import engines

    servers: dict[str, str] = {}
    for name in engines.names():
        entry = engines.entry(name)
        for fixture in (f"testbed_{name}_server", entry.url_fixture, entry.client_fixture):
            if fixture:
                servers[fixture] = name
    django = []
    if config.pluginmanager.has_plugin("testbed-django-databases"):
        from testbed.plugin.django import managed_engines

        django = managed_engines(config)
    needed: dict[str, None] = {}
    for item in items:
        if _skipped(item):
            continue  # its fixtures will not be set up
        names = getattr(item, "fixturenames", ())
        for fixture in names:
            if fixture in servers:
                needed[servers[fixture]] = None
        if django and _needs_django_db(item, names):
            needed.update(dict.fromkeys(django))
    return list(needed)


def _skipped(item: pytest.Item) -> bool:
    """Whether a skip or skipif mark skips ``item`` (pytest's own evaluation; a condition that cannot be
    evaluated here counts as not skipping: pytest reports it when the test runs)."""
    try:
        from _pytest.skipping import evaluate_skip_marks
    except ImportError:
        return False
    try:
        return evaluate_skip_marks(item) is not None
    except Exception:
        return False


DJANGO_DB_FIXTURES = frozenset({"db", "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback",
                                "live_server", "django_db_setup"})


def _needs_django_db(item: pytest.Item, names: Any) -> bool:
    """A test that pytest-django gives a database: marked django_db, asking for one of its database
    fixtures, or a Django TestCase (pytest-django asks for them at run time, out of the static closure)."""
    if item.get_closest_marker("django_db") is not None or DJANGO_DB_FIXTURES.intersection(names):
        return True
    cls = getattr(item, "cls", None)
    if cls is None:
        return False
    try:
        from django.test import TransactionTestCase
    except ImportError:
        return False
    return isinstance(cls, type) and issubclass(cls, TransactionTestCase)


def _ask_early(broker: Mapping[str, str], name: str) -> None:
    try:
        ask_broker(broker, name)
    except Exception:  # the first test that needs the engine asks again and reports what went wrong
        pass


def ask_broker(broker: Mapping[str, str], name: str) -> dict[str, Any]:
    """Worker side: the broker's answer for engine ``name``. While the controller starts or adopts the
    server, a thread imports what this worker will use it with (the engine, its worker-database modules)."""
    warming = threading.Thread(target=_import_for_worker, args=(name,), name=f"testbed-warm-{name}", daemon=True)
    warming.start()
    answer = request_service(broker, name)
    warming.join()
    return answer


def _import_for_worker(name: str) -> None:
    import importlib

    from testbed import engines

    try:
        for module in engines.get(name).worker_modules:
            importlib.import_module(module)
    except Exception:  # the same imports fail again where they are needed, and are reported there
        pass


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    broker = config.stash.get(_broker_key, None)
    if broker is not None:
        broker.close()
        del config.stash[_broker_key]
