"""RabbitMQ: which installation, its private Erlang environment, start-up, readiness, per-worker vhost,
per-test reset.

RabbitMQ is an Erlang node, and Erlang nodes find each other through epmd on port 4369, share a cookie
in ~/.erlang.cookie and keep their database under /var/lib/rabbitmq. testbed gives its node all of its
own: an epmd of its own on a dynamic port (so the node registers nowhere else), a HOME with a fresh cookie,
a dynamic AMQP port and distribution port (both on loopback), a database and config in the run folder, and
no /etc/rabbitmq/rabbitmq-env.conf. It never touches a RabbitMQ that is already running on the machine.

A node's first boot creates its database (about twice as slow as later boots), so the freshly created
database is cached per installation and copied in for every later session; users, passwords and vhosts
are applied from a definitions file on each boot, so the cache holds no credentials that matter.

With runner = "existing", testbed uses the vhost the configured URL names and deletes after each test only
the queues and exchanges that test declared (learnt from the node's rabbitmq_event_exchange plugin).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import secrets
import signal
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from testbed.config import ServiceSettings
from testbed.engines.base import Endpoint, Engine, Running, refuse_shared_namespace
from testbed.errors import BinaryNotFoundError, ConfigError, ServerStartError, VersionMismatchError
from testbed.runners import binaries, discovery
from testbed.runners.binaries import Candidate
from testbed.runners.managed import ManagedServer
from testbed.runners.ports import LOOPBACK, free_port
from testbed.runners.process import LocalProcess
from testbed.runners.users import chown_tree

USER = "testbed"
NODE_NAME = "testbed@localhost"  # unique where it matters: it registers only with this run's own epmd
CACHE_FORMAT = "3"  # 3: the cached data folder is the node's mnesia base; it holds only the "/" vhost
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


@dataclass(frozen=True)
class RabbitMQEndpoint(Endpoint):
    """How to reach a node: ``url`` is ``amqp://testbed:<password>@host:port/<vhost>`` of the worker's vhost."""

    label: ClassVar[str] = "RabbitMQ"
    boundary: ClassVar[str] = "rabbitmq"

    management_port: int = 0  # 0 without the management plugin
    password: str = ""
    vhosts: tuple[str, ...] = ("/",)
    vhost: str = ""  # this endpoint's vhost (see for_worker); "" = the first
    user: str = USER
    existing: bool = False

    @property
    def url(self) -> str:
        return self.vhost_url(self.vhost or self.vhosts[0])

    def vhost_url(self, vhost: str | None = None) -> str:
        """amqp://<user>:<password>@host:port/<vhost> (pika, aio-pika, kombu accept it)."""
        v = urllib.parse.quote(vhost or self.vhost or self.vhosts[0], safe="")
        auth = f"{urllib.parse.quote(self.user, safe='')}:{urllib.parse.quote(self.password, safe='')}"
        return f"amqp://{auth}@{self.host}:{self.port}/{v}"

    def vhost_for(self, worker_id: str | None) -> str:
        """The vhost an xdist worker uses: its own on a shared node, else the node's first."""
        own = worker_vhost(worker_id)
        return own if own in self.vhosts and not self.existing else self.vhosts[0]

    def _inventory(self) -> Any:
        from testbed.engines import rabbitmq_inventory

        return rabbitmq_inventory.inventory_for(self.host, self.port, lambda: self.vhost_url("/"))

    def declared(self, vhost: str | None = None) -> tuple[set[str], set[str]]:
        """(queues, exchanges) declared in ``vhost`` since this process started watching the node."""
        v = vhost or self.vhost or self.vhosts[0]
        inventory = self._inventory()
        inventory.sync(self.vhost_url(v), v)
        queues, exchanges = inventory.snapshot(v)
        return set(queues), set(exchanges)

    def queues(self, vhost: str | None = None) -> list[str]:
        """The names of the queues in ``vhost`` declared since this process looked."""
        return sorted(self.declared(vhost)[0])

    def reset(self, vhost: str | None = None, keep: tuple[set[str], set[str]] | None = None) -> list[str]:
        """Delete the queues and (not built-in) exchanges of ``vhost``, except ``keep``; returns what went.

        The per-test reset: nothing a test declared or published to survives into the next test. What
        exists is learnt from the node's event exchange (see rabbitmq_inventory), from the first reset on.
        """
        import pika.exceptions

        from testbed.engines import rabbitmq_inventory

        self.check_alive("resetting the test's vhost")
        v = vhost or self.vhost or self.vhosts[0]
        try:
            queues, exchanges = self.declared(v)
            if keep is not None:
                queues, exchanges = queues - keep[0], exchanges - keep[1]
            removed: list[str] = rabbitmq_inventory.delete_all(self.vhost_url(v), queues, exchanges)
            return removed
        except pika.exceptions.AMQPError:
            self.check_alive("resetting the test's vhost", settle=2.0)
            raise


class RabbitMQServer(ManagedServer):
    """A running RabbitMQ node (plus its private epmd) owned by this process."""

    engine_name = "rabbitmq"
    run_prefix = "rabbitmq"
    log_name = "rabbitmq.log"
    poll_interval = 0.02
    port_taken = ("eaddrinuse", "already_used")
    cache_layout = f"{CACHE_FORMAT}|{NODE_NAME}"
    max_cached = 4

    def __init__(self, settings: ServiceSettings, vhosts: Sequence[str] = (),
                 plugins: Sequence[str] = DEFAULT_PLUGINS, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.plugins = tuple(plugins)
        workers = kwargs.get("workers") or (None,)
        if not vhosts:
            # A node of its own needs no per-worker vhost (each one costs boot time); a shared node has one each.
            vhosts = tuple(worker_vhost(w) for w in workers) if len(workers) > 1 else ("/",)
        # The first vhost is the default of url(); on a shared node each xdist worker has its own.
        self.vhosts = tuple(dict.fromkeys(vhosts))
        self.management_port = 0
        self.epmd: LocalProcess | None = None
        self._boot_vhosts: tuple[str, ...] = ("/",)

    def url(self, vhost: str | None = None) -> str:
        """amqp://testbed:<password>@127.0.0.1:<port>/<vhost> (default: the first vhost)."""
        return self.endpoint().vhost_url(vhost)

    def layout(self) -> str | None:
        return f"{self.cache_layout}|{','.join(sorted(self.plugins))}"

    def min_startup_timeout(self) -> float:
        return 60.0

    def prepare(self) -> None:
        assert self.run_dir is not None
        for sub in ("home", "log"):
            (self.run_dir / sub).mkdir(exist_ok=True)
        cookie = self.run_dir / "home" / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(20).upper())
        cookie.chmod(0o400)
        (self.run_dir / "enabled_plugins").write_text(f"[{','.join(self.plugins)}].\n")
        (self.run_dir / "rabbitmq-env.conf").write_text("# testbed: deliberately empty, the environment says it all\n")

    def before_spawn(self, building: bool) -> None:
        # The cached database stays free of per-run vhosts: the first (building) boot defines only "/".
        assert self.run_dir is not None
        d = self.run_dir
        self._boot_vhosts = ("/",) if building else tuple(dict.fromkeys(("/", *self.vhosts)))
        definitions = {
            "users": [{"name": USER, "password_hash": password_hash(self.password),
                       "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["administrator"]}],
            "vhosts": [{"name": v} for v in self._boot_vhosts],
            "permissions": [{"user": USER, "vhost": v, "configure": ".*", "write": ".*", "read": ".*"}
                            for v in self._boot_vhosts],
        }
        (d / "definitions.json").write_text(json.dumps(definitions))
        self.management_port = free_port()
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
        (d / "rabbitmq.conf").write_text("".join(f"{k} = {v}\n" for k, v in conf.items()))
        (d / "rabbitmq.conf").chmod(0o600)
        chown_tree(str(d), self.run_as)
        self._epmd_port, self._dist_port = free_port(), free_port()
        self.epmd = LocalProcess(
            "rabbitmq", [find_epmd(), "-port", str(self._epmd_port), "-address", LOOPBACK],
            log_path=d / "epmd.log", run_as=self.run_as, cwd=d, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        ).start()
        self.epmd.wait_ready(lambda: _port_open(self._epmd_port), timeout=10)

    def after_failed_spawn(self) -> None:
        if self.epmd is not None:
            self.epmd.stop()

    def command(self, building: bool) -> tuple[list[str], Mapping[str, str] | None]:
        assert self.binary is not None
        return [self.binary.path], self._env(self._epmd_port, self._dist_port)

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
            "RABBITMQ_MNESIA_BASE": str(d / "data"),
            "RABBITMQ_MNESIA_DIR": str(d / "data" / NODE_NAME),
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

    def ready(self) -> bool:
        import pika

        params = pika.URLParameters(self.endpoint().vhost_url(self._boot_vhosts[0])
                                    + "?connection_attempts=1&socket_timeout=2")
        conn = pika.BlockingConnection(params)
        try:
            conn.channel().close()
        finally:
            conn.close()
        return True

    def halt(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=30)
        if self.epmd is not None:
            self.epmd.stop()

    def stop(self) -> None:
        """Stop the node (SIGKILL: its data is thrown away anyway) and epmd; delete the run folder."""
        if self.process is not None:
            self.process.stop_signal = signal.SIGKILL
        super().stop()

    def endpoint(self) -> RabbitMQEndpoint:
        management = self.management_port if "rabbitmq_management" in self.plugins else 0
        return RabbitMQEndpoint(**self.base_endpoint_fields(), management_port=management, password=self.password,
                                vhosts=self.vhosts)


def _port_open(port: int) -> bool:
    import socket

    with socket.create_connection((LOOPBACK, port), timeout=1):
        return True


class ExistingRabbitMQ:
    """A node testbed did not start (runner = "existing"): reached by URL, never stopped; testbed deletes only
    what a test declared."""

    def __init__(self, settings: ServiceSettings) -> None:
        parts = urllib.parse.urlsplit(settings.url or "")
        if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
            raise ConfigError(
                f"[tool.testbed.rabbitmq] url = {settings.url!r}: expected amqp://user:password@host:port/vhost.")
        vhost = urllib.parse.unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
        self.settings = settings
        self._endpoint = RabbitMQEndpoint(
            host=parts.hostname, port=parts.port or 5672, version="", binary="(existing server)",
            source=f"existing server at {parts.hostname}:{parts.port or 5672}", pid=0, start_time=None, log_path="",
            password=urllib.parse.unquote(parts.password or "guest"), vhosts=(vhost,), vhost=vhost,
            user=urllib.parse.unquote(parts.username or "guest"), existing=True,
        )

    def start(self) -> ExistingRabbitMQ:
        import pika

        e = self._endpoint
        try:
            conn = pika.BlockingConnection(pika.URLParameters(e.url + "?connection_attempts=1&socket_timeout=5"))
        except Exception as exc:
            raise ServerStartError(
                f"cannot use the existing RabbitMQ at {e.host}:{e.port}: {type(exc).__name__} {exc}. Check "
                "[tool.testbed.rabbitmq] url, or remove runner = 'existing' to let testbed start its own.",
                boundary="rabbitmq") from None
        try:
            version = str(conn._impl.server_properties.get("version", b""), "utf-8", "replace") \
                if isinstance(conn._impl.server_properties.get("version"), bytes) \
                else str(conn._impl.server_properties.get("version", ""))
            channel = conn.channel()
            try:
                channel.exchange_declare("amq.rabbitmq.event", "topic", passive=True, durable=True, internal=True)
            except Exception:
                raise ConfigError(
                    f"the existing RabbitMQ at {e.host}:{e.port} has no rabbitmq_event_exchange plugin; testbed "
                    "learns from it which queues and exchanges a test declared, so that it deletes only those. "
                    "Enable it there (`rabbitmq-plugins enable rabbitmq_event_exchange`) or let testbed run its "
                    "own node (remove runner = 'existing').") from None
        finally:
            if conn.is_open:
                conn.close()
        if not binaries.version_matches(self.settings.version, version):
            raise VersionMismatchError(
                f"RabbitMQ {self.settings.version} requested, but the existing node at {e.host}:{e.port} is "
                f"{version}. Change [tool.testbed.rabbitmq] version or url.", boundary="rabbitmq")
        self._endpoint = replace(e, version=version)
        return self

    def endpoint(self) -> RabbitMQEndpoint:
        return self._endpoint

    def stop(self) -> None:
        """Nothing to stop: the node is not ours."""

    def describe(self) -> Mapping[str, str]:
        e = self._endpoint
        return {"engine": "RabbitMQ", "version": e.version, "binary": e.binary, "source": e.source,
                "url": f"amqp://{e.host}:{e.port}/{urllib.parse.quote(e.vhost, safe='')}",
                "data": "the existing server's"}


class RabbitMQEngine(Engine):
    programs = ("rabbitmq-server", "epmd", "beam.smp")
    name = "rabbitmq"
    label = "RabbitMQ"
    endpoint_class = RabbitMQEndpoint
    url_fixture = "rabbitmq_url"
    client_fixture = "rabbitmq_connection"

    def discover(self, settings: ServiceSettings) -> list[Candidate]:
        return discover(settings)

    def choose_binary(self, settings: ServiceSettings) -> Candidate:
        return discovery.choose(SPEC, settings, discover(settings))

    def start_local(self, settings: ServiceSettings, root: Path, workers: tuple[str | None, ...]) -> Running:
        return RabbitMQServer(settings, workers=workers).start()

    def attach(self, settings: ServiceSettings, root: Path, workers: tuple[str | None, ...]) -> Running:
        refuse_shared_namespace(self.label, "queues and exchanges", "vhost", workers)
        return ExistingRabbitMQ(settings).start()

    def for_worker(self, endpoint: Endpoint, worker_id: str | None) -> Endpoint:
        assert isinstance(endpoint, RabbitMQEndpoint)
        return replace(endpoint, vhost=endpoint.vhost_for(worker_id))

    @contextlib.contextmanager
    def test_scope(self, endpoint: Endpoint, nodeid: str) -> Iterator[str]:
        assert isinstance(endpoint, RabbitMQEndpoint)
        if endpoint.existing:  # only what this test declares goes
            keep = endpoint.declared()
            yield endpoint.url
            if endpoint.alive():
                endpoint.reset(keep=keep)
            return
        endpoint.reset()
        yield endpoint.url
        if endpoint.alive():
            endpoint.reset()

    @contextlib.contextmanager
    def client(self, endpoint: Endpoint, url: str) -> Iterator[Any]:
        import pika

        conn = pika.BlockingConnection(pika.URLParameters(url))
        try:
            yield conn
        finally:
            if conn.is_open:
                conn.close()

    def close(self) -> None:
        """End of a session: close the declaration inventories this process opened."""
        from testbed.engines.rabbitmq_inventory import close_inventories

        close_inventories()


ENGINE = RabbitMQEngine()


@contextlib.contextmanager
def running(settings: ServiceSettings | None = None, vhosts: Sequence[str] = (),
            plugins: Sequence[str] = DEFAULT_PLUGINS) -> Iterator[RabbitMQServer]:
    """A fresh RabbitMQ node for the duration of the block: ``with running() as q: q.url()``."""
    server = RabbitMQServer(settings or ServiceSettings(engine="rabbitmq"), vhosts, plugins)
    try:
        yield server.start()
    finally:
        server.stop()
