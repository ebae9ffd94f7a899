"""RabbitMQ: which installation, its private Erlang environment, start-up, readiness, and stop.

RabbitMQ is an Erlang node, and Erlang nodes find each other through epmd on port 4369, share a cookie
in ~/.erlang.cookie and keep their database under /var/lib/rabbitmq. testbed gives its node all of its
own: an epmd of its own on a dynamic port (so the node registers nowhere else), a HOME with a fresh cookie,
a dynamic AMQP port and distribution port, a database and config in the run folder, and no
/etc/rabbitmq/rabbitmq-env.conf. It never touches a RabbitMQ that is already running on the machine.

A node's first boot creates its database (about twice as slow as later boots), so the freshly created
database is cached per installation and copied in for every later session; users, passwords and vhosts
are applied from a definitions file on each boot, so the cache holds no credentials that matter.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import pika
import pika.exceptions

from testbed.config import ServiceSettings
from testbed.errors import BinaryNotFoundError, ServerStartError
from testbed.runners import binaries
from testbed.runners.binaries import Candidate
from testbed.runners.liveness import ProcessLiveness
from testbed.runners.ports import LOOPBACK, ensure_port_free, free_port
from testbed.runners.process import LocalProcess
from testbed.runners.reaper import (
    current_record,
    process_start_time,
    reap_stale_runs,
)
from testbed.runners.users import RunAs, chown_tree, server_identity
from testbed.runners.workspace import DataLocation, cache_root, data_location, new_run_dir
from testbed.services import discovery, rabbitmq_inventory

USER = "testbed"
NODE_NAME = "testbed@localhost"  # unique where it matters: it registers only with this run's own epmd
MAX_CACHED_DATABASES = 4
CACHE_FORMAT = "2"  # 2: the cached database holds only the "/" vhost
# The event exchange tells the per-test reset what a test declared (rabbitmq_inventory); it is far
# lighter than the management plugin. Pass plugins=(..., "rabbitmq_management") for the HTTP API.
DEFAULT_PLUGINS = ("rabbitmq_event_exchange",)
_VERSION_IN_PATH = re.compile(r"rabbitmq[_-]server[-/](\d+(?:\.\d+)+)|/rabbitmq/(\d+(?:\.\d+)+)/")


def real_script(path: str) -> str:
    """The rabbitmq-server script that really starts the node.

    Debian's /usr/sbin/rabbitmq-server is a wrapper that switches to the `rabbitmq` user and writes to
    /var/log/rabbitmq; the script it calls is the one testbed runs under its own user and folders.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(4096).decode("utf-8", "replace")
    except OSError:
        return path
    m = re.search(r"(/[\w/.-]+/bin)/\$\{?SCRIPT\}?", head)
    if "su rabbitmq" in head and m:
        candidate = os.path.join(m.group(1), "rabbitmq-server")
        if os.path.isfile(candidate):
            return candidate
    return path


def _rabbitmq_version(path: str) -> str:
    real = os.path.realpath(real_script(path))
    m = _VERSION_IN_PATH.search(real)
    if m:
        return m.group(1) or m.group(2)
    # Installs without the version in their path: read it from the rabbit application folder.
    base = Path(real).parent.parent
    for plugins in (base / "plugins", base / "lib"):
        for app in sorted(plugins.glob("rabbit-[0-9]*"), reverse=True):
            return app.name.split("-", 1)[1].removesuffix(".ez")
    return ""


SPEC = discovery.BinarySpec(
    engine="rabbitmq",
    label="RabbitMQ",
    names=("rabbitmq-server",),
    system_globs=("/usr/lib/rabbitmq/bin/rabbitmq-server",
                  "/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin/rabbitmq-server",
                  "/usr/sbin/rabbitmq-server", "/opt/homebrew/sbin/rabbitmq-server",
                  "/usr/local/sbin/rabbitmq-server", "/opt/rabbitmq/sbin/rabbitmq-server"),
    pip_bundles=(),
    version_of=_rabbitmq_version,
    install_hint=(
        "RabbitMQ has no pip bundle: install the server and Erlang with your system's package manager "
        "(`apt install rabbitmq-server`, `brew install rabbitmq`, or the generic-unix tarball from "
        "https://www.rabbitmq.com/install-generic-unix.html), or set [tool.testbed.rabbitmq] binary = "
        "'/path/to/sbin/rabbitmq-server'."
    ),
)


def discover(settings: ServiceSettings) -> list[Candidate]:
    """Every RabbitMQ installation found, in discovery order; wrappers resolved to the real script."""
    found = [Candidate(path=real_script(c.path), version=c.version, source=c.source)
             for c in discovery.discover(SPEC, settings)]
    return binaries.dedupe(found)


def choose_binary(settings: ServiceSettings) -> Candidate:
    """The first RabbitMQ of the pinned version; a clear error when there is none."""
    return discovery.choose(SPEC, settings, discover(settings))


def find_epmd() -> str:
    """The Erlang port mapper daemon binary of the installed Erlang."""
    for path in (*binaries.which_all("epmd"),
                 *binaries.glob_executables(("/usr/lib/erlang/erts-*/bin/epmd", "/usr/local/lib/erlang/erts-*/bin/epmd",
                                             "/opt/homebrew/lib/erlang/erts-*/bin/epmd"))):
        return path
    raise BinaryNotFoundError(
        "RabbitMQ needs Erlang, but no `epmd` was found on PATH or in /usr/lib/erlang/erts-*/bin. Install "
        "Erlang (`apt install erlang-base`, `brew install erlang`).",
        boundary="rabbitmq",
    )


def password_hash(password: str) -> str:
    """RabbitMQ's salted SHA-256 password hash, as its definitions file expects."""
    salt = secrets.token_bytes(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def worker_vhost(worker_id: str | None) -> str:
    """The vhost of an xdist worker on a shared node ("gw1" -> "testbed-gw1"; no xdist -> "/").

    A node used by one worker (or no xdist) needs no vhost of its own: every extra vhost costs boot time.
    """
    return f"testbed-{worker_id}" if worker_id else "/"


class RabbitMQServer:
    """A running RabbitMQ node (plus its private epmd) owned by this process."""

    def __init__(self, settings: ServiceSettings, vhosts: Sequence[str] = (),
                 plugins: Sequence[str] = DEFAULT_PLUGINS) -> None:
        self.settings = settings
        self.plugins = tuple(plugins)
        # The first vhost is the default of url(); on a shared node each xdist worker has its own.
        self.vhosts = tuple(dict.fromkeys(vhosts or ("/",)))
        self.binary: Candidate | None = None
        self.location: DataLocation | None = None
        self.run_dir: Path | None = None
        self.port = 0
        self.management_port = 0
        self.password = ""
        self.process: LocalProcess | None = None
        self.epmd: LocalProcess | None = None
        self.cache_hit = False
        self._probe_vhost = "/"
        self.timings: dict[str, float] = {}

    def url(self, vhost: str | None = None) -> str:
        """amqp://testbed:<password>@127.0.0.1:<port>/<vhost> (default: the first vhost)."""
        v = urllib.parse.quote(vhost or self.vhosts[0], safe="")
        return f"amqp://{USER}:{self.password}@{LOOPBACK}:{self.port}/{v}"

    def start(self) -> RabbitMQServer:
        """Start epmd and the node as the server user; wait until an AMQP client can open a channel."""
        t0 = time.perf_counter()
        reap_stale_runs()
        self.binary = choose_binary(self.settings)
        run_as = server_identity()
        self.binary = discovery.ensure_runnable(SPEC, self.binary, run_as)
        self.location = data_location(self.settings.data_dir)
        self.run_dir = new_run_dir(self.location, "rabbitmq")
        current_record().add_path(self.run_dir)
        self.password = secrets.token_urlsafe(18)
        cache = self._cache_dir(run_as)
        mnesia = self.run_dir / "mnesia"
        if (cache / "ready").exists():
            self.cache_hit = True
            shutil.copytree(cache / "mnesia", mnesia, symlinks=True)
            os.utime(cache)  # most recently used: kept by the eviction in _publish_cache
        else:
            mnesia.mkdir()
        if not self.cache_hit:
            self._prepare(run_as, vhosts=("/",))  # the cached database stays free of per-run vhosts
            self._spawn(run_as)
            self._publish_cache(cache, run_as)
        self._prepare(run_as, vhosts=self.vhosts)
        self._spawn(run_as)
        self.timings["start_ms"] = (time.perf_counter() - t0) * 1000
        return self

    def _cache_dir(self, run_as: RunAs | None) -> Path:
        assert self.binary is not None
        ident = f"{CACHE_FORMAT}|{os.path.realpath(self.binary.path)}|{self.binary.version}|{NODE_NAME}|"
        ident += f"{run_as.uid if run_as else os.geteuid()}|{','.join(sorted(self.plugins))}"
        return cache_root() / "rabbitmq" / hashlib.sha256(ident.encode()).hexdigest()[:16]

    def _publish_cache(self, cache: Path, run_as: RunAs | None) -> None:
        # The node was stopped cleanly (SIGTERM), so its database is consistent: copy, then rename.
        assert self.run_dir is not None
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.parent / f".{cache.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
        tmp.mkdir()
        shutil.copytree(self.run_dir / "mnesia", tmp / "mnesia", symlinks=True)
        (tmp / "ready").write_text(self.binary.version if self.binary else "")
        try:
            tmp.rename(cache)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # another run published it first: same content
        # Keep the newest few (one per installation / plugin set); older formats and binaries go.
        entries = sorted((p for p in cache.parent.iterdir() if not p.name.startswith(".")),
                         key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[MAX_CACHED_DATABASES:]:
            shutil.rmtree(old, ignore_errors=True)

    def _prepare(self, run_as: RunAs | None, vhosts: Sequence[str]) -> None:
        assert self.run_dir is not None
        d = self.run_dir
        self._probe_vhost = vhosts[0]  # the readiness probe opens a channel in a vhost this boot defines
        for sub in ("home", "log"):
            (d / sub).mkdir(exist_ok=True)
        cookie = d / "home" / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(secrets.token_hex(20).upper())
            cookie.chmod(0o400)
        (d / "enabled_plugins").write_text(f"[{','.join(self.plugins)}].\n")
        (d / "rabbitmq-env.conf").write_text("# testbed: deliberately empty, the environment says it all\n")
        definitions = {
            "users": [{"name": USER, "password_hash": password_hash(self.password),
                       "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["administrator"]}],
            "vhosts": [{"name": v} for v in dict.fromkeys(("/", *vhosts))],
            "permissions": [{"user": USER, "vhost": v, "configure": ".*", "write": ".*", "read": ".*"}
                            for v in dict.fromkeys(("/", *vhosts))],
        }
        (d / "definitions.json").write_text(json.dumps(definitions))
        chown_tree(str(d), run_as)

    def _write_conf(self, run_as: RunAs | None) -> None:
        assert self.run_dir is not None
        d = self.run_dir
        conf = {
            "loopback_users": "none",
            "default_user": USER,
            "default_pass": secrets.token_urlsafe(12),  # only used by the first boot; definitions set the real one
            "load_definitions": str(d / "definitions.json"),
            "log.console": "true",
            "log.console.level": "info",
            "log.file": "false",
            **self.settings.options,
        }
        if "rabbitmq_management" in self.plugins:
            conf.update({"management.tcp.ip": LOOPBACK, "management.tcp.port": str(self.management_port)})
        path = d / "rabbitmq.conf"
        path.write_text("".join(f"{k} = {v}\n" for k, v in conf.items()))
        path.chmod(0o600)
        chown_tree(str(path), run_as)

    def _env(self, epmd_port: int, dist_port: int) -> dict[str, str]:
        assert self.run_dir is not None
        d = self.run_dir
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(d / "home"),  # the cookie lives here
            "ERL_EPMD_PORT": str(epmd_port),
            "ERL_EPMD_ADDRESS": LOOPBACK,
            "RABBITMQ_NODENAME": NODE_NAME,
            "RABBITMQ_USE_LONGNAME": "false",
            "RABBITMQ_NODE_IP_ADDRESS": LOOPBACK,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(dist_port),
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_MNESIA_DIR": str(d / "mnesia" / NODE_NAME),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_LOGS": "-",
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(d / "plugins-expand"),
            "RABBITMQ_PID_FILE": str(d / "rabbitmq.pid"),
            # Loopback only: the Erlang distribution port (RABBITMQ_DIST_PORT) binds 0.0.0.0 by default.
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-start_epmd false -kernel inet_dist_use_interface {127,0,0,1}",
            # With NOTIFY_SOCKET set, rabbitmq-server execs the Erlang VM instead of running it as a child
            # of a shell: our pid is the VM's, so stop signals and the parent-death signal reach the node.
            "NOTIFY_SOCKET": str(d / "notify.sock"),
        }

    def _spawn(self, run_as: RunAs | None) -> None:
        assert self.binary is not None and self.run_dir is not None
        port = self.settings.port
        if port:
            ensure_port_free(port, service="rabbitmq")
        for attempt in range(3):
            self.port = port or free_port()
            epmd_port, dist_port, self.management_port = free_port(), free_port(), free_port()
            self._write_conf(run_as)
            self.epmd = LocalProcess(
                "rabbitmq", [find_epmd(), "-port", str(epmd_port), "-address", LOOPBACK],
                log_path=self.run_dir / "epmd.log", run_as=run_as, cwd=self.run_dir,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            ).start()
            self.epmd.wait_ready(lambda p=epmd_port: _port_open(p), timeout=10)  # type: ignore[misc]
            self.process = LocalProcess(
                "rabbitmq", [self.binary.path], log_path=self.run_dir / "rabbitmq.log",
                env=self._env(epmd_port, dist_port), run_as=run_as, cwd=self.run_dir,
                stop_signal=signal.SIGTERM,
            ).start()
            try:
                self.process.wait_ready(self._ready, timeout=max(self.settings.startup_timeout, 60),
                                        interval=0.02)
            except ServerStartError:
                self.epmd.stop()
                # A dynamic port (AMQP, distribution, management) can be taken between free_port() and
                # the node's bind, e.g. as some client's ephemeral port: retry with fresh ports.
                tail = self.process.tail(60).lower()
                if port or attempt == 2 or not ("eaddrinuse" in tail or "already_used" in tail):
                    raise
                continue
            if not self.cache_hit and not (self.run_dir / "mnesia-published").exists():
                # First boot: stop cleanly so the database can be cached, the caller starts it again.
                (self.run_dir / "mnesia-published").touch()
                self._halt()
            return

    def _ready(self) -> bool:
        params = pika.URLParameters(self.url(self._probe_vhost) + "?connection_attempts=1&socket_timeout=2")
        conn = pika.BlockingConnection(params)
        try:
            conn.channel().close()
        finally:
            conn.close()
        return True

    def _halt(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=30)
        if self.epmd is not None:
            self.epmd.stop()

    def check_alive(self, what: str = "the test") -> None:
        """Raise ServerDiedError with the log tail if the node has exited."""
        if self.process is not None and not self.process.alive():
            raise self.process.died_error(f"RabbitMQ is gone ({what})")

    def stop(self) -> None:
        """Stop the node (SIGKILL: its data is thrown away anyway) and epmd; delete the run folder."""
        if self.process is not None:
            self.process.stop_signal = signal.SIGKILL
        self._halt()
        if self.run_dir is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            current_record().remove_path(self.run_dir)
            self.run_dir = None

    def endpoint(self) -> RabbitMQEndpoint:
        return RabbitMQEndpoint.of(self)

    def describe(self) -> Mapping[str, str]:
        assert self.binary and self.location
        return {"engine": "RabbitMQ", "version": self.binary.version, "binary": self.binary.path,
                "source": self.binary.source, "url": self.url(),
                "data": f"{self.run_dir} ({self.location.kind})", "cache": "hit" if self.cache_hit else "built"}


def _port_open(port: int) -> bool:
    import socket

    with socket.create_connection((LOOPBACK, port), timeout=1):
        return True


@contextlib.contextmanager
def running(settings: ServiceSettings | None = None, vhosts: Sequence[str] = (),
            plugins: Sequence[str] = DEFAULT_PLUGINS) -> Iterator[RabbitMQServer]:
    """A fresh RabbitMQ node for the duration of the block: ``with running() as q: q.url()``."""
    server = RabbitMQServer(settings or ServiceSettings(engine="rabbitmq"), vhosts, plugins)
    try:
        yield server.start()
    finally:
        server.stop()


@dataclass(frozen=True)
class RabbitMQEndpoint(ProcessLiveness):
    """How to reach a running node: plain data, so an xdist controller can hand it to workers."""

    label: ClassVar[str] = "RabbitMQ"
    boundary: ClassVar[str] = "rabbitmq"

    host: str
    port: int
    management_port: int  # 0 without the management plugin
    password: str
    vhosts: tuple[str, ...]
    version: str
    binary: str
    source: str
    pid: int
    start_time: int | None
    log_path: str

    @classmethod
    def of(cls, server: RabbitMQServer) -> RabbitMQEndpoint:
        assert server.binary and server.process
        management = server.management_port if "rabbitmq_management" in server.plugins else 0
        return cls(host=LOOPBACK, port=server.port, management_port=management, password=server.password,
                   vhosts=server.vhosts,
                   version=server.binary.version, binary=server.binary.path, source=server.binary.source,
                   pid=server.process.pid, start_time=process_start_time(server.process.pid),
                   log_path=str(server.process.log_path))

    def url(self, vhost: str | None = None) -> str:
        """amqp://testbed:<password>@127.0.0.1:<port>/<vhost> (pika, aio-pika, kombu accept it)."""
        v = urllib.parse.quote(vhost or self.vhosts[0], safe="")
        return f"amqp://{USER}:{self.password}@{self.host}:{self.port}/{v}"

    def vhost_for(self, worker_id: str | None) -> str:
        """The vhost an xdist worker uses: its own on a shared node, else the node's first."""
        own = worker_vhost(worker_id)
        return own if own in self.vhosts else self.vhosts[0]

    def _inventory(self) -> rabbitmq_inventory.DeclarationInventory:
        return rabbitmq_inventory.inventory_for(self.host, self.port, lambda: self.url("/"))

    def queues(self, vhost: str | None = None) -> list[str]:
        """The names of the queues in ``vhost`` (default: the first) declared since this process looked."""
        v = vhost or self.vhosts[0]
        inventory = self._inventory()
        inventory.sync(self.url(v), v)
        return sorted(inventory.snapshot(v)[0])

    def reset(self, vhost: str | None = None) -> list[str]:
        """Delete every queue and every exchange that is not built in from ``vhost``; returns what went.

        The per-test reset: nothing a test declared or published to survives into the next test. What
        exists is learnt from the node's event exchange (see rabbitmq_inventory), from the first reset on:
        call it once before the first test, as the rabbitmq_url fixture does.
        """
        self.check_alive("resetting the test's vhost")
        v = vhost or self.vhosts[0]
        try:
            inventory = self._inventory()
            inventory.sync(self.url(v), v)
            queues, exchanges = inventory.snapshot(v)
            return rabbitmq_inventory.delete_all(self.url(v), queues, exchanges)
        except pika.exceptions.AMQPError:
            self.check_alive("resetting the test's vhost", settle=2.0)
            raise

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RabbitMQEndpoint:
        return cls(**{**data, "vhosts": tuple(data["vhosts"])})


