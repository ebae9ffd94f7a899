"""PostgreSQL: which binary, how it is initialised, started, made ready, and stopped.

Start-up is fast because nothing is done twice: `initdb` runs once per binary and its folder is cached;
a cluster whose template database was built from unchanged migrations is cached too (keyed by their
content hash), so a usual session start is: copy a ready cluster to tmpfs, exec `postgres`, poll its
socket every 5 ms.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from testbed.config import ServiceSettings
from testbed.errors import (
    BinaryNotFoundError,
    ConfigError,
    ServerDiedError,
    ServerStartError,
    VersionMismatchError,
)
from testbed.runners import binaries
from testbed.runners.binaries import Candidate
from testbed.runners.ports import LOOPBACK, ensure_port_free, free_port
from testbed.runners.process import LocalProcess, log_tail
from testbed.runners.reaper import current_record, reap_stale_runs
from testbed.runners.tree_cache import DATA_HINT, binary_cache_root, copy_tree, evict_oldest, publish_tree
from testbed.runners.users import RunAs, chown_tree, runnable_path, server_identity
from testbed.runners.workspace import DataLocation, data_location, new_run_dir
from testbed.services.discovery import binary_sources

SUPERUSER = "postgres"
TEMPLATE_DB = "testbed_template"
# Bumped whenever the initdb arguments or the cluster layout change, so old caches are not reused.
CACHE_FORMAT = "1"
INITDB_ARGS = ["-U", SUPERUSER, "-E", "UTF8", "--locale=C", "--auth-local=trust",
               "--auth-host=scram-sha-256", "--no-sync"]
TUNED = {
    # Test data is disposable: durability off, nothing waits for the disk.
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    # JIT compilation only slows down the short queries tests run.
    "jit": "off",
    "max_connections": "200",
    "logging_collector": "off",
    "log_min_messages": "warning",
    "log_checkpoints": "off",
    "timezone": "UTC",
    # Dynamic shared memory as files in the data folder, not /dev/shm/PostgreSQL.* segments that a
    # SIGKILLed postmaster would leave behind (the data folder goes with the run).
    "dynamic_shared_memory_type": "mmap",
}
SYSTEM_GLOBS = (
    "/usr/lib/postgresql/*/bin/postgres",  # Debian/Ubuntu: one bin folder per major
    "/usr/pgsql-*/bin/postgres",  # RHEL/Fedora PGDG
    "/usr/local/pgsql/bin/postgres",
    "/opt/homebrew/opt/postgresql@*/bin/postgres",
    "/usr/local/opt/postgresql@*/bin/postgres",
    "/opt/local/lib/postgresql*/bin/postgres",
)
MAX_CACHED_CLUSTERS = 8


def _postgres_version(path: str) -> str:
    # "postgres (PostgreSQL) 15.19 (Debian 15.19-0+deb12u1)"
    out = binaries.run_version(path)
    if "PostgreSQL" not in out:
        return ""
    return binaries.parse_version(out.split("PostgreSQL", 1)[1])


def _explicit(binary: str) -> str:
    p = Path(binary)
    if p.is_dir():
        p = p / "postgres"
    elif p.name == "pg_config":
        out = subprocess.run([str(p), "--bindir"], capture_output=True, text=True)
        p = Path(out.stdout.strip()) / "postgres"
    return str(p)


def pgserver_bin_dir() -> Path | None:
    """The bin folder of the pip-installed `pgserver` wheel (PostgreSQL 16), without importing it."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        d = Path(loc) / "pginstall" / "bin"
        if (d / "postgres").exists():
            return d
    return None


def discover(settings: ServiceSettings) -> list[Candidate]:
    """Every PostgreSQL server binary found, in discovery order (config, PATH, system, pip)."""
    found: list[Candidate] = []
    sources = binary_sources()
    if settings.binary and "config" in sources:
        path = _explicit(settings.binary)
        if not os.path.isfile(path):
            raise BinaryNotFoundError(
                f"[tool.testbed.postgres] binary = {settings.binary!r}: no postgres executable at {path}. "
                "Point it at a PostgreSQL bin folder, its postgres executable or its pg_config.",
                boundary="postgres",
            )
        found += binaries.probe([path], "config", _postgres_version)
    if "path" in sources:
        found += binaries.probe(binaries.which_all("postgres"), "PATH", _postgres_version)
        for pg_config in binaries.which_all("pg_config"):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
            cand = Path(out.stdout.strip()) / "postgres"
            if cand.is_file():
                found += binaries.probe([str(cand)], "PATH (pg_config)", _postgres_version)
    if "system" in sources:
        found += binaries.probe(binaries.glob_executables(SYSTEM_GLOBS), "system", _postgres_version)
    if "pip" in sources:
        bundle = pgserver_bin_dir()
        if bundle is not None:
            found += binaries.probe([str(bundle / "postgres")], "pip:pgserver", _postgres_version)
    return binaries.dedupe(found)


PGSERVER_MAJOR = "16"  # the only major the pgserver wheel ships
SUPPORTED_MAJORS = ("13", "14", "15", "16", "17", "18")  # PostgreSQL majors with community packages today


def install_hint(version: str | None) -> str:
    """How to get a PostgreSQL of ``version`` (or any): only what really provides that major."""
    major = version.split(".")[0] if version else None
    ways = []
    if major in (None, PGSERVER_MAJOR):
        ways.append(f"`pip install 'pytest-testbed[pg]'` (the pgserver wheel bundles PostgreSQL {PGSERVER_MAJOR})")
    if major is None:
        ways.append("your system's package (e.g. `apt install postgresql`)")
    elif major in SUPPORTED_MAJORS:
        ways.append(
            f"PostgreSQL {major} from the PostgreSQL project's packages (Debian/Ubuntu: `apt install "
            f"postgresql-{major}` after adding https://apt.postgresql.org; RHEL/Fedora: postgresql{major}-server "
            f"from https://yum.postgresql.org; macOS: `brew install postgresql@{major}`)"
        )
    else:
        return (
            f"PostgreSQL {version} is not a major version anyone packages today (supported: "
            f"{', '.join(SUPPORTED_MAJORS)}): pin one of those, or point [tool.testbed.postgres] binary at an "
            "installation of your own."
        )
    ways.append("or set [tool.testbed.postgres] binary = '/path/to/bin'")
    return "Install one: " + ", ".join(ways) + "."


def choose_binary(settings: ServiceSettings) -> Candidate:
    """The first binary of the pinned major version; a clear error when there is none."""
    candidates = discover(settings)
    if not candidates:
        raise BinaryNotFoundError(
            "no PostgreSQL server binary found. Looked in: "
            + ", ".join(binary_sources())
            + f" (config `binary`, PATH and pg_config, {', '.join(SYSTEM_GLOBS[:2])} ..., the pgserver wheel). "
            + install_hint(settings.version),
            boundary="postgres",
        )
    for cand in candidates:
        if binaries.version_matches(settings.version, cand.version):
            return cand
    raise VersionMismatchError(
        f"PostgreSQL {settings.version} requested, but found only:\n{binaries.describe(candidates)}\n"
        f"{install_hint(settings.version)} Or change [tool.testbed.postgres] version to one of: "
        f"{', '.join(sorted({c.major for c in candidates}))}.",
        boundary="postgres",
    )


@dataclass
class InitdbCache:
    """Cached `initdb` output and migrated clusters for one binary, under the user cache folder."""

    binary: Candidate
    run_as: RunAs | None
    root: Path = field(init=False)

    def __post_init__(self) -> None:
        self.root = binary_cache_root("postgres", self.binary.major, self.binary.path, self.binary.version,
                                      self.run_as, f"{CACHE_FORMAT}|{' '.join(INITDB_ARGS)}")

    @property
    def initdb_dir(self) -> Path:
        return self.root / "initdb"

    def cluster_dir(self, content_key: str) -> Path:
        return self.root / "clusters" / content_key

    def ensure_initdb(self, scratch: Path) -> Path:
        """The cached initdb folder, running initdb (once per binary) when it is not cached yet."""
        if (self.initdb_dir / "PG_VERSION").exists():
            return self.initdb_dir
        bindir = Path(self.binary.path).parent
        target = scratch / "initdb"
        target.mkdir(mode=0o700)
        chown_tree(str(target), self.run_as)
        log = scratch / "initdb.log"
        with open(log, "wb") as out:
            kwargs: dict[str, Any] = {}
            if self.run_as is not None:
                kwargs.update(user=self.run_as.uid, group=self.run_as.gid, extra_groups=[])
            rc = subprocess.run(
                [str(bindir / "initdb"), "-D", str(target), *INITDB_ARGS],
                stdout=out, stderr=subprocess.STDOUT, cwd=scratch, **kwargs,
            ).returncode
        if rc != 0:
            shutil.rmtree(target, ignore_errors=True)
            full = "No space left" in log.read_text(errors="replace")
            raise ServerStartError(
                f"initdb failed (exit {rc}) for {self.binary.path}. Its output:\n{log_tail(log)}"
                + (f"\n{scratch.parent} is full. {DATA_HINT}" if full else ""),
                boundary="postgres",
            )
        publish_tree(target, self.initdb_dir)
        return self.initdb_dir

    def publish_cluster(self, data_dir: Path, content_key: str) -> None:
        publish_tree(data_dir, self.cluster_dir(content_key))
        self._evict()

    def _evict(self) -> None:
        evict_oldest(self.root / "clusters", MAX_CACHED_CLUSTERS)




class PostgresServer:
    """A running PostgreSQL server owned by this process (or adopted from a controller by address)."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.binary: Candidate | None = None
        self.location: DataLocation | None = None
        self.run_dir: Path | None = None
        self.data_dir: Path | None = None
        self.socket_dir: Path | None = None
        self.port = 0
        self.password = ""
        self.process: LocalProcess | None = None
        self.cache_hit = False
        self.shmid: int | None = None
        self.timings: dict[str, float] = {}

    # -- addresses ---------------------------------------------------------------------------------
    @property
    def version(self) -> str:
        return self.binary.version if self.binary else ""

    def url(self, dbname: str = "postgres") -> str:
        """A libpq URL over loopback TCP with the generated password (what an application uses)."""
        return f"postgresql://{SUPERUSER}:{self.password}@{LOOPBACK}:{self.port}/{dbname}"

    def socket_conninfo(self, dbname: str = "postgres") -> dict[str, Any]:
        """Keyword arguments for psycopg.connect over the private unix socket (faster, no password)."""
        return {"host": str(self.socket_dir), "port": self.port, "user": SUPERUSER, "dbname": dbname}

    def connect(self, dbname: str = "postgres", **kwargs: Any) -> psycopg.Connection[Any]:
        self.check_alive("connecting")
        return psycopg.connect(**self.socket_conninfo(dbname), **kwargs)

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(
        self,
        *,
        content_key: str = "empty",
        build_template: Callable[[PostgresServer], None] | None = None,
    ) -> PostgresServer:
        """Start from the cached cluster for ``content_key``, building and caching it if needed.

        ``build_template`` runs against a fresh server when the cache has no cluster for the key: it
        creates and fills the template database (the schema layer applies migrations there).
        """
        t0 = time.perf_counter()
        reap_stale_runs()
        self.binary = choose_binary(self.settings)
        run_as = server_identity()
        # initdb, lib/ and share/ are found relative to the binary: stage the whole install tree if needed.
        install_tree = str(Path(os.path.realpath(self.binary.path)).parent.parent)
        staged = runnable_path(self.binary.path, install_tree, run_as, boundary="postgres")
        if staged != self.binary.path:
            self.binary = replace(self.binary, path=staged)
        self.location = data_location(self.settings.data_dir)
        self.run_dir = new_run_dir(self.location, "pg")
        current_record().add_path(self.run_dir)
        cache = InitdbCache(self.binary, run_as)
        self.data_dir = self.run_dir / "data"
        self.socket_dir = self.run_dir / "sock"
        self.socket_dir.mkdir(mode=0o700)
        chown_tree(str(self.socket_dir), run_as)
        cluster = cache.cluster_dir(content_key)
        if (cluster / "PG_VERSION").exists():
            self.cache_hit = True
            os.utime(cluster)  # most recently used first, so a concurrent run's eviction keeps it
            copy_tree(cluster, self.data_dir, run_as)
            self.timings["copy_ms"] = (time.perf_counter() - t0) * 1000
            self._spawn(run_as)
        else:
            initdb = cache.ensure_initdb(self.run_dir)
            copy_tree(initdb, self.data_dir, run_as)
            self._spawn(run_as)
            with self.connect(autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
            if build_template is not None:
                build_template(self)
            with self.connect(autocommit=True) as conn:
                conn.execute(f'ALTER DATABASE "{TEMPLATE_DB}" WITH IS_TEMPLATE true')
                conn.execute("CHECKPOINT")
            self._halt()
            cache.publish_cluster(self.data_dir, content_key)
            self._spawn(run_as)
        self.timings["start_ms"] = (time.perf_counter() - t0) * 1000
        return self

    def _spawn(self, run_as: RunAs | None) -> None:
        assert self.binary and self.data_dir and self.socket_dir and self.run_dir
        port = self.settings.port
        if port:
            ensure_port_free(port, service="postgres")
        options = {**TUNED, **self.settings.options}
        for attempt in range(3):
            self.port = port or free_port()
            argv = [self.binary.path, "-D", str(self.data_dir), "-p", str(self.port), "-k", str(self.socket_dir),
                    "-c", f"listen_addresses={LOOPBACK}"]
            for k, v in options.items():
                argv += ["-c", f"{k}={v}"]
            self.process = LocalProcess(
                "postgres", argv, log_path=self.run_dir / "postgres.log", run_as=run_as, cwd=self.run_dir,
                stop_signal=signal.SIGINT, death_signal=signal.SIGINT,  # SIGINT = fast shutdown
            ).start()
            try:
                self.process.wait_ready(self._ready, timeout=self.settings.startup_timeout)
                self._record_shared_memory()
                self._set_password()
                return
            except ServerStartError:
                # A dynamic port can be grabbed between our probe and the server's bind: retry on another.
                if port or attempt == 2 or "Address already in use" not in self.process.tail(5):
                    raise

    def _record_shared_memory(self) -> None:
        # The postmaster always keeps a small SysV segment (an interlock); a SIGKILLed one leaves it behind,
        # so the run record names it for the next run to release. postmaster.pid line 7: "<key> <shmid>".
        assert self.data_dir is not None and self.process is not None
        try:
            fields = (self.data_dir / "postmaster.pid").read_text().splitlines()[6].split()
            self.shmid = int(fields[1])
        except (OSError, IndexError, ValueError):
            return
        current_record().add_shm(self.shmid, self.process.pid)

    def _ready(self) -> bool:
        assert self.socket_dir is not None
        if not (self.socket_dir / f".s.PGSQL.{self.port}").exists():
            return False
        with psycopg.connect(**self.socket_conninfo(), connect_timeout=2):
            return True

    def _set_password(self) -> None:
        # Fresh per run; the cached cluster never holds a usable TCP password.
        self.password = secrets.token_urlsafe(18)
        with self.connect(autocommit=True) as conn:
            conn.execute(f"ALTER ROLE {SUPERUSER} PASSWORD '{self.password}'")

    def _halt(self) -> None:
        if self.process is not None:
            self.process.stop()
        if self.shmid is not None:
            current_record().remove_shm(self.shmid)  # a clean shutdown releases it
            self.shmid = None

    def endpoint(self) -> PostgresEndpoint:
        return PostgresEndpoint.of(self)

    def check_alive(self, what: str = "the test") -> None:
        """Raise ServerDiedError with the log tail if the server process has exited."""
        if self.process is not None and not self.process.alive():
            raise self.process.died_error(f"PostgreSQL is gone ({what})")

    def log_tail(self, lines: int = 25) -> str:
        return self.process.tail(lines) if self.process else ""

    def stop(self) -> None:
        """Stop the server and delete its folder."""
        self._halt()
        if self.run_dir is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            current_record().remove_path(self.run_dir)
            self.run_dir = None

    def describe(self) -> Mapping[str, str]:
        """What `testbed up` / `doctor` / the demo summary print about this server."""
        assert self.binary and self.location
        return {
            "engine": "PostgreSQL",
            "version": self.binary.version,
            "binary": self.binary.path,
            "source": self.binary.source,
            "url": self.url(),
            "data": f"{self.data_dir} ({self.location.kind})",
            "cache": "hit" if self.cache_hit else "built",
        }


@contextlib.contextmanager
def running(settings: ServiceSettings, **start_kwargs: Any) -> Iterator[PostgresServer]:
    server = PostgresServer(settings)
    try:
        yield server.start(**start_kwargs)
    finally:
        server.stop()


class ExistingPostgres:
    """A PostgreSQL server testbed did not start (runner = "existing"): reached by URL, never stopped.

    testbed only creates databases there (a template per migrations hash, kept for the next run, and
    per-run worker databases it drops), and refuses to touch any database without its marker.
    """

    def __init__(self, settings: ServiceSettings) -> None:
        if not settings.url:
            raise ConfigError("[tool.testbed.postgres] runner = 'existing' needs url = 'postgresql://...'.")
        from testbed.schema.template import RunOwner

        self.settings = settings
        self.info: dict[str, Any] = conninfo_to_dict(settings.url)
        # Per-run databases are named after a random run id and carry its owner row; the run holds an
        # advisory lock for its lifetime, so another run (any host, any PID namespace) can tell them apart.
        self.owner = RunOwner()
        self.db_prefix = f"testbed_r{self.owner.run}"
        self.version = ""
        self.template = TEMPLATE_DB
        self.cache_hit = False
        self._liveness: psycopg.Connection[Any] | None = None

    def connect(self, dbname: str | None = None, **kwargs: Any) -> psycopg.Connection[Any]:
        info = dict(self.info)
        if dbname:
            info["dbname"] = dbname
        try:
            return psycopg.connect(**info, connect_timeout=5, **kwargs)
        except psycopg.OperationalError as exc:
            raise ServerStartError(
                f"cannot connect to the existing PostgreSQL at {self._where()}: {str(exc).strip()}. Check "
                "[tool.testbed.postgres] url (or TESTBED_POSTGRES_URL), or remove runner = 'existing' to let "
                "testbed start its own server.",
                boundary="postgres",
            ) from None

    def _where(self) -> str:
        return f"{self.info.get('host', 'localhost')}:{self.info.get('port', 5432)}"

    def check(self) -> None:
        """Version pin and privileges: testbed needs to create databases there."""
        with self.connect(autocommit=True) as conn:
            row = conn.execute(
                "SELECT current_setting('server_version'), rolsuper OR rolcreatedb FROM pg_roles "
                "WHERE rolname = current_user"
            ).fetchone()
        assert row is not None
        self.version = binaries.parse_version(str(row[0]))
        if not binaries.version_matches(self.settings.version, self.version):
            raise VersionMismatchError(
                f"PostgreSQL {self.settings.version} requested, but the existing server at {self._where()} "
                f"is {self.version}. Point url at a {self.settings.version} server or change "
                "[tool.testbed.postgres] version.",
                boundary="postgres",
            )
        if not row[1]:
            raise ConfigError(
                f"the role {self.info.get('user')!r} on {self._where()} may not create databases; testbed "
                "needs CREATEDB (it creates a template and per-worker databases, and drops only those)."
            )
        # Held until stop() (or until this process dies and the server closes the connection).
        self._liveness = self.connect(autocommit=True)
        self._liveness.execute("SELECT pg_advisory_lock(%s, %s)", (self.owner.lock_class, self.owner.lock_key))

    def endpoint(self) -> PostgresEndpoint:
        return PostgresEndpoint(
            host=str(self.info.get("host") or "localhost"), port=int(self.info.get("port") or 5432),
            socket_dir="", password=str(self.info.get("password") or ""), version=self.version,
            binary="(existing server)", source=f"existing server at {self._where()}", pid=0,
            start_time=None, log_path="", data_kind="existing", user=str(self.info.get("user") or SUPERUSER),
            template=self.template, db_prefix=self.db_prefix,
            maintenance_db=str(self.info.get("dbname") or "postgres"), owner=asdict(self.owner),
        )

    def stop(self) -> None:
        """Nothing to stop: the server is not ours. Releases the run's liveness lock."""
        if self._liveness is not None:
            self._liveness.close()
            self._liveness = None

    def describe(self) -> Mapping[str, str]:
        return {
            "engine": "PostgreSQL", "version": self.version, "binary": "(existing server)",
            "source": f"existing server at {self._where()}", "url": self.settings.url or "",
            "data": "the existing server's", "cache": "hit" if self.cache_hit else "built",
        }


@dataclass(frozen=True)
class PostgresEndpoint:
    """How to reach a running server: plain data, so the xdist controller can hand it to workers."""

    host: str
    port: int
    socket_dir: str
    password: str
    version: str
    binary: str
    source: str
    pid: int  # 0 for a server testbed did not start (runner = "existing")
    start_time: int | None
    log_path: str
    data_kind: str
    user: str = SUPERUSER
    template: str = TEMPLATE_DB
    db_prefix: str = "testbed"  # worker databases are <db_prefix>_<worker>
    maintenance_db: str = "postgres"
    owner: dict[str, Any] | None = None  # a shared server's per-run databases record their owner (RunOwner)

    @classmethod
    def of(cls, server: PostgresServer) -> PostgresEndpoint:
        assert server.binary and server.process and server.location
        from testbed.runners.reaper import process_start_time

        return cls(
            host=LOOPBACK, port=server.port, socket_dir=str(server.socket_dir), password=server.password,
            user=SUPERUSER,
            version=server.binary.version, binary=server.binary.path, source=server.binary.source,
            pid=server.process.pid, start_time=process_start_time(server.process.pid),
            log_path=str(server.process.log_path), data_kind=server.location.kind,
        )

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def url(self, dbname: str = "postgres") -> str:
        """A libpq URL over TCP with the password."""
        from urllib.parse import quote

        auth = f"{quote(self.user)}:{quote(self.password)}" if self.password else quote(self.user)
        return f"postgresql://{auth}@{self.host}:{self.port}/{dbname}"

    def conninfo(self, dbname: str = "postgres") -> dict[str, Any]:
        """psycopg.connect keyword arguments: the private unix socket, or TCP for an existing server."""
        if self.socket_dir:
            return {"host": self.socket_dir, "port": self.port, "user": self.user, "dbname": dbname}
        info: dict[str, Any] = {"host": self.host, "port": self.port, "user": self.user, "dbname": dbname}
        if self.password:
            info["password"] = self.password
        return info

    def connect(self, dbname: str = "postgres", **kwargs: Any) -> psycopg.Connection[Any]:
        self.check_alive("connecting")
        try:
            return psycopg.connect(**self.conninfo(dbname), **kwargs)
        except psycopg.OperationalError:
            self.check_alive("connecting")
            raise

    def alive(self) -> bool:
        if not self.pid:  # not ours: reachable is all we can tell
            import socket

            try:
                with socket.create_connection((self.host, self.port), timeout=2):
                    return True
            except OSError:
                return False
        from testbed.runners.reaper import is_same_process

        return is_same_process(self.pid, self.start_time)

    def log_tail(self, lines: int = 25) -> str:
        return log_tail(Path(self.log_path), lines)

    def check_alive(self, what: str = "the test") -> None:
        """Raise ServerDiedError with the server's last log lines if it is gone."""
        if not self.alive():
            if not self.pid:
                raise ServerDiedError(
                    f"the existing PostgreSQL at {self.host}:{self.port} no longer accepts connections ({what}).",
                    boundary="postgres",
                )
            raise ServerDiedError(
                f"PostgreSQL (pid {self.pid}, port {self.port}) is no longer running ({what}). "
                f"Its last log lines ({self.log_path}):\n{self.log_tail()}",
                boundary="postgres",
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PostgresEndpoint:
        return cls(**data)
