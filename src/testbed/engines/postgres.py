"""PostgreSQL: which binary, how it is initialised, started, made ready, and stopped; the migrated
template; an existing server.

Start-up is fast because nothing is done twice: `initdb` runs once per binary and its folder is cached;
a cluster whose template database was built from unchanged migrations is cached too (keyed by their
content hash), so a usual session start is: copy a ready cluster to tmpfs, exec `postgres`, poll its
socket every 5 ms. Per-worker databases and per-test isolation are in ``testbed.isolation``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from testbed.config import ServiceSettings, SqlSettings
from testbed.engines.base import Endpoint, Running, SqlEngine
from testbed.engines.settings import PostgresSettings as PostgresSettings  # where it was defined before
from testbed.errors import (
    BinaryNotFoundError,
    ConfigError,
    MigrationError,
    ServerStartError,
    TestbedError,
    VersionMismatchError,
)
from testbed.runners import binaries, discovery
from testbed.runners.binaries import Candidate
from testbed.runners.discovery import binary_sources
from testbed.runners.managed import ManagedServer
from testbed.runners.ports import LOOPBACK
from testbed.runners.reaper import current_record
from testbed.runners.tree_cache import DATA_HINT
from testbed.runners.users import chown_tree

if TYPE_CHECKING:
    import psycopg

    from testbed.engines.postgres_spares import SpareDatabases




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


def _pg_config_bindirs() -> list[str]:
    found = []
    for pg_config in binaries.which_all("pg_config"):
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        cand = Path(out.stdout.strip()) / "postgres"
        if cand.is_file():
            found.append(str(cand))
    return found


SPEC = discovery.BinarySpec(
    engine="postgres",
    label="PostgreSQL",
    names=("postgres",),
    system_globs=SYSTEM_GLOBS,
    pip_bundles=("pgserver",),
    version_of=_postgres_version,
    install_hint="",  # install_hint(version): it depends on the pinned major
    explicit=_explicit,
    more_on_path=(_pg_config_bindirs,),
)


def discover(settings: ServiceSettings) -> list[Candidate]:
    """Every PostgreSQL server binary found, in discovery order (config, PATH, system, pip)."""
    return discovery.discover(SPEC, settings)


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
    candidates = []
    for cand in discovery.iter_candidates(SPEC, settings):  # lazily: later sources are not even looked at
        if binaries.version_matches(settings.version, cand.version):
            return cand
        candidates.append(cand)
    if not candidates:
        raise BinaryNotFoundError(
            "no PostgreSQL server binary found. Looked in: "
            + ", ".join(binary_sources())
            + f" (config `binary`, PATH and pg_config, {', '.join(SYSTEM_GLOBS[:2])} ..., the pgserver wheel). "
            + install_hint(settings.version),
            boundary="postgres",
        )
    raise VersionMismatchError(
        f"PostgreSQL {settings.version} requested, but found only:\n{binaries.describe(candidates)}\n"
        f"{install_hint(settings.version)} Or change [tool.testbed.postgres] version to one of: "
        f"{', '.join(sorted({c.major for c in candidates}))}.",
        boundary="postgres",
    )


class PostgresServer(ManagedServer):
    """A running PostgreSQL server owned by this process."""

    engine_name = "postgres"
    run_prefix = "pg"
    log_name = "postgres.log"
    stop_signal = signal.SIGINT  # fast shutdown
    death_signal = signal.SIGINT
    cache_layout = f"{CACHE_FORMAT}|{' '.join(INITDB_ARGS)}"

    def __init__(self, settings: ServiceSettings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.socket_dir: Path | None = None
        self.shmid: int | None = None
        self._spares: SpareDatabases | None = None
        self._spares_lock = threading.Lock()

    # -- addresses ---------------------------------------------------------------------------------
    def url(self, dbname: str = "postgres") -> str:
        """A libpq URL over loopback TCP with the generated password (what an application uses)."""
        return f"postgresql://{SUPERUSER}:{self.password}@{LOOPBACK}:{self.port}/{dbname}"

    def socket_conninfo(self, dbname: str = "postgres") -> dict[str, Any]:
        """Keyword arguments for psycopg.connect over the private unix socket (faster, no password)."""
        return {"host": str(self.socket_dir), "port": self.port, "user": SUPERUSER, "dbname": dbname}

    def connect(self, dbname: str = "postgres", **kwargs: Any) -> psycopg.Connection[Any]:
        import psycopg

        self.check_alive("connecting")
        return psycopg.connect(**self.socket_conninfo(dbname), **kwargs)

    # -- the lifecycle hooks -----------------------------------------------------------------------
    def install_tree(self, binary: Candidate) -> str:
        # initdb, lib/ and share/ are found relative to the binary: stage the whole install tree if needed.
        return str(Path(os.path.realpath(binary.path)).parent.parent)

    def new_password(self) -> str:
        import secrets

        return secrets.token_urlsafe(18)  # set on every spawn: the cached cluster never holds a usable one

    def prepare(self) -> None:
        assert self.run_dir is not None
        self.socket_dir = self.run_dir / "sock"
        self.socket_dir.mkdir(mode=0o700)
        chown_tree(str(self.socket_dir), self.run_as)
        # The structured log (every statement of a database that asks for it, errors, warnings): read by the
        # per-test transcript, so readable by this run's user when the server runs as another one.
        (self.run_dir / "log").mkdir(mode=0o755)
        chown_tree(str(self.run_dir / "log"), self.run_as)

    @property
    def json_log(self) -> Path | None:
        """The structured log's path when this server writes one (PostgreSQL 15+)."""
        from testbed.engines.postgres_log import JSON_NAME, JSONLOG_MIN_MAJOR

        if self.run_dir is None or self.binary is None or int(self.binary.major) < JSONLOG_MIN_MAJOR:
            return None
        return self.run_dir / "log" / JSON_NAME

    def log_tail(self, lines: int = 25) -> str:
        from testbed.engines.postgres_log import render_tail

        tail = super().log_tail(lines)
        structured = render_tail(self.json_log, lines) if self.json_log is not None else ""
        return "\n".join(t for t in (tail, structured) if t)

    def make_data_dir(self, target: Path, scratch: Path) -> None:
        assert self.binary is not None
        target.mkdir(mode=0o700)
        chown_tree(str(target), self.run_as)
        log = scratch / "initdb.log"
        with open(log, "wb") as out:
            kwargs: dict[str, Any] = {}
            if self.run_as is not None:
                kwargs.update(user=self.run_as.uid, group=self.run_as.gid, extra_groups=[])
            rc = subprocess.run(
                [str(Path(self.binary.path).parent / "initdb"), "-D", str(target), *INITDB_ARGS],
                stdout=out, stderr=subprocess.STDOUT, cwd=scratch, **kwargs,
            ).returncode
        if rc != 0:
            full = "No space left" in log.read_text(errors="replace")
            from testbed.runners.process import log_tail

            raise ServerStartError(
                f"initdb failed (exit {rc}) for {self.binary.path}. Its output:\n{log_tail(log)}"
                + (f"\n{scratch.parent} is full. {DATA_HINT}" if full else ""),
                boundary="postgres",
            )

    def command(self, building: bool) -> tuple[list[str], Mapping[str, str] | None]:
        assert self.binary is not None and self.data_dir is not None and self.socket_dir is not None
        argv = [self.binary.path, "-D", str(self.data_dir), "-p", str(self.port), "-k", str(self.socket_dir),
                "-c", f"listen_addresses={LOOPBACK}"]
        from testbed.engines.postgres_log import log_settings

        assert self.run_dir is not None
        logging = log_settings(str(self.run_dir / "log"), int(self.binary.major))
        for k, v in {**TUNED, **logging, **self.settings.options}.items():
            argv += ["-c", f"{k}={v}"]
        return argv, None

    def ready(self) -> bool:
        import psycopg

        assert self.socket_dir is not None
        if not (self.socket_dir / f".s.PGSQL.{self.port}").exists():
            return False
        with psycopg.connect(**self.socket_conninfo(), connect_timeout=2):
            return True

    def on_spawned(self) -> None:
        self._record_shared_memory()
        with self.connect(autocommit=True) as conn:
            conn.execute(f"ALTER ROLE {SUPERUSER} PASSWORD '{self.password}'")

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

    def populate(self) -> None:
        with self.connect(autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')

    def finish_build(self) -> None:
        with self.connect(autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{TEMPLATE_DB}" WITH IS_TEMPLATE true')
            conn.execute("CHECKPOINT")

    # -- databases a keeper hands to runs (runners/keeper.py) ----------------------------------------
    def _databases(self) -> SpareDatabases:
        """The kept server's claims and spares (made on the first request; the keeper serves each
        connection on a thread of its own)."""
        with self._spares_lock:
            if self._spares is None:
                from testbed.engines.postgres_spares import SpareDatabases
                from testbed.isolation.worker import clone_sql

                assert self.binary is not None
                major = int(self.binary.major)
                self._spares = SpareDatabases(lambda: self.connect(autocommit=True),
                                              lambda name, template: clone_sql(name, template, major))
            return self._spares

    def claim_database(self, template: str, name: str) -> None:
        """Database ``name``, a copy of ``template``, for a run of this kept server (a spare renamed if ready)."""
        self._databases().claim(template, name)

    def capture_database(self, name: str) -> dict[str, Any]:
        """Log every statement of claimed database ``name`` (the per-test transcript reads the log)."""
        return self._databases().capture(name)

    def lease_info(self) -> dict[str, Any]:
        """For a new lease of this kept server: its template databases (a run whose template is among them
        starts without a connection of its own)."""
        return {"templates": self._databases().templates()}

    def release_database(self, name: str) -> None:
        """The run that claimed ``name`` is gone: drop it and its clones, copy spares for the next run."""
        self._databases().release(name)

    def halt(self) -> None:
        with self._spares_lock:
            if self._spares is not None:
                self._spares.close()
                self._spares = None
        super().halt()
        if self.shmid is not None:
            current_record().remove_shm(self.shmid)  # a clean shutdown releases it
            self.shmid = None

    def endpoint(self) -> PostgresEndpoint:
        assert self.location is not None
        return PostgresEndpoint(**self.base_endpoint_fields(), socket_dir=str(self.socket_dir),
                                password=self.password, data_kind=self.location.kind,
                                statement_log=str(self.json_log or ""))

    def describe(self) -> Mapping[str, str]:
        info = dict(super().describe())
        info["engine"] = "PostgreSQL"
        info["url"] = self.url()
        info["data"] = f"{self.data_dir} ({self.location.kind if self.location else '?'})"
        return info


@contextlib.contextmanager
def running(settings: ServiceSettings, **start_kwargs: Any) -> Iterator[PostgresServer]:
    server = PostgresServer(settings, **start_kwargs)
    try:
        yield server.start()
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
        from psycopg.conninfo import conninfo_to_dict

        assert isinstance(settings, SqlSettings)
        self.settings: SqlSettings = settings
        self.info: dict[str, Any] = conninfo_to_dict(settings.url)
        # Per-run databases are named after a random run id and carry its owner row; the run holds an
        # advisory lock for its lifetime, so another run (any host, any PID namespace) can tell them apart.
        from testbed.schema.template import RunOwner

        self.owner = RunOwner()
        self.db_prefix = f"testbed_r{self.owner.run}"
        self.version = ""
        self.template = TEMPLATE_DB
        self.cache_hit = False
        self._liveness: psycopg.Connection[Any] | None = None

    def connect(self, dbname: str | None = None, **kwargs: Any) -> psycopg.Connection[Any]:
        import psycopg

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

    def start(self, root: Path) -> ExistingPostgres:
        """Check the server, then build (or reuse) the migrated template there; clean dead runs' databases."""
        return prepare_existing(self, root)

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
class PostgresEndpoint(Endpoint):
    """How to reach a server: ``url`` is its maintenance database; ``database_url(name)`` any other."""

    label: ClassVar[str] = "PostgreSQL"
    boundary: ClassVar[str] = "postgres"

    socket_dir: str = ""  # "" for a server testbed did not start: TCP only
    password: str = ""
    data_kind: str = ""
    user: str = SUPERUSER
    template: str = TEMPLATE_DB
    db_prefix: str = "testbed"  # worker databases are <db_prefix>_<worker>
    maintenance_db: str = "postgres"
    owner: dict[str, Any] | None = None  # a shared server's per-run databases record their owner (RunOwner)
    statement_log: str = ""  # the structured log (jsonlog) of a server testbed started; "" when none
    keeper: dict[str, Any] | None = None  # a kept server's keeper (socket, token): it hands out databases

    def log_tail(self, lines: int = 25) -> str:
        tail = super().log_tail(lines)
        if not self.statement_log:
            return tail
        from testbed.engines.postgres_log import render_tail

        return "\n".join(t for t in (tail, render_tail(Path(self.statement_log), lines)) if t)

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def url(self) -> str:
        return self.database_url(self.maintenance_db)

    def database_url(self, dbname: str = "postgres") -> str:
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
        import psycopg

        self.check_alive("connecting")
        try:
            return psycopg.connect(**self.conninfo(dbname), **kwargs)
        except psycopg.OperationalError:
            self.check_alive("connecting")
            raise


def template_builder(settings: SqlSettings, root: Path) -> tuple[str, Callable[[PostgresServer], None]]:
    """The cache key of the project's migrated template and the function that builds it on a fresh server."""
    from testbed.schema.migrations import migration_source
    from testbed.schema.template import content_key, install_bookkeeping
    from testbed.schema.timeout import postgres_inspector, run_with_timeout

    source = migration_source(settings.migrations, root, "postgres")
    key = content_key(source, settings.seed_tables)

    def build(server: PostgresServer) -> None:
        conninfo = server.socket_conninfo(TEMPLATE_DB)
        try:
            with app_environment(root, server.endpoint(), TEMPLATE_DB):
                run_with_timeout(lambda: source.apply(server.url(TEMPLATE_DB), conninfo),
                                 timeout=settings.migration_timeout, inspect=postgres_inspector(conninfo),
                                 what=source.description)
            _build_django_alias_templates(server, source, settings)
        except MigrationError as exc:
            raise MigrationError(
                f"{exc.args[0]}\nPostgreSQL's last log lines:\n{server.log_tail(10)}", boundary=exc.boundary
            ) from None
        install_bookkeeping(conninfo, settings.seed_tables)

    return key, build


def app_environment(root: Path, endpoint: PostgresEndpoint, dbname: str) -> contextlib.AbstractContextManager[None]:
    """While the template is migrated, the [tool.testbed.env] variables that name PostgreSQL point at it: a
    migration that reads the application's settings (an Alembic env.py importing them) migrates the template,
    not the database those settings name outside tests."""
    from testbed import handoff

    return handoff.environment(handoff.app_environment(root, "postgres", ENGINE.database_view(endpoint, dbname)))


def _build_django_alias_templates(server: PostgresServer, source: Any, settings: SqlSettings) -> None:
    """Django aliases besides the first get templates of their own (their routers may differ)."""
    from testbed.schema.django import DjangoMigrations, migrate, template_name
    from testbed.schema.template import install_bookkeeping
    from testbed.schema.timeout import postgres_inspector, run_with_timeout

    if not isinstance(source, DjangoMigrations):
        return
    for alias in source.extra_aliases():
        name = template_name(alias, TEMPLATE_DB)
        with server.connect(autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        conninfo = server.socket_conninfo(name)
        run_with_timeout(lambda c=conninfo, a=alias: migrate(a, c),  # type: ignore[misc]
                         timeout=settings.migration_timeout, inspect=postgres_inspector(conninfo),
                         what=f"Django migrate --database={alias}")
        install_bookkeeping(conninfo, settings.seed_tables)
        with server.connect(autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE true')


def prepare_existing(server: ExistingPostgres, root: Path, shared: bool = True) -> ExistingPostgres:
    """Build (or reuse) the migrated template on an existing server; clean a killed run's databases.
    ``shared=False``: a kept server (no version or privilege check, no liveness lock, nothing to reap)."""
    from testbed.schema.migrations import migration_source
    from testbed.schema.template import content_key

    settings = server.settings
    if shared:
        server.check()
    source = migration_source(settings.migrations, root, "postgres")
    # A kept server's run has hashed its migrations already (the keeper's key): not twice per run.
    key = getattr(server, "run_content", "") or content_key(source, settings.seed_tables)
    name = f"testbed_tpl_{key[:20]}"
    lock = int(key[:15], 16)
    if getattr(server, "kept_content", None) == key:
        name = TEMPLATE_DB  # the keeper started from the cached cluster of exactly these migrations
    if not shared and _all_known(server, source, name):
        server.cache_hit = True  # the keeper listed them; a kept server's templates are never dropped
        server.template = name
        return server
    with server.connect(autocommit=True) as admin:
        if shared:
            _reap_existing(server, admin)
        admin.execute("SELECT pg_advisory_lock(%s)", (lock,))  # concurrent runs build a template once
        try:
            if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                server.cache_hit = True
            else:
                from testbed.schema.template import install_bookkeeping
                from testbed.schema.timeout import postgres_inspector, run_with_timeout

                building = f"{name}_b{os.getpid()}"
                admin.execute(f'DROP DATABASE IF EXISTS "{building}"')
                admin.execute(f'CREATE DATABASE "{building}" TEMPLATE template0')
                endpoint = server.endpoint()
                try:
                    conninfo = endpoint.conninfo(building)
                    with app_environment(root, endpoint, building):
                        run_with_timeout(lambda: source.apply(endpoint.database_url(building), conninfo),
                                         timeout=settings.migration_timeout,
                                         inspect=postgres_inspector(conninfo), what=source.description)
                    install_bookkeeping(endpoint.conninfo(building), settings.seed_tables)
                except BaseException:
                    admin.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
                    raise
                admin.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
                admin.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE true')
            _existing_django_alias_templates(server, admin, source, name, settings)
        finally:
            admin.execute("SELECT pg_advisory_unlock(%s)", (lock,))
    server.template = name
    return server


def _all_known(server: ExistingPostgres, source: Any, template: str) -> bool:
    """Whether the keeper listed ``template`` among the kept server's templates, with Django's other
    aliases' templates beside it (built under the same lock, so all are there or the build is not done)."""
    known: frozenset[str] = getattr(server, "known_templates", frozenset())
    if template not in known:
        return False
    if not hasattr(source, "extra_aliases"):
        return True
    from testbed.schema.django import template_name

    return all(template_name(alias, template) in known for alias in source.extra_aliases())


def _existing_django_alias_templates(server: ExistingPostgres, admin: Any, source: Any, template: str,
                                     settings: SqlSettings) -> None:
    """On an existing or kept server, Django's other aliases get their templates beside ``template`` (as a
    local server's cached cluster has them), built once under the caller's advisory lock."""
    from testbed.schema.django import DjangoMigrations, migrate, template_name
    from testbed.schema.template import install_bookkeeping
    from testbed.schema.timeout import postgres_inspector, run_with_timeout

    if not isinstance(source, DjangoMigrations):
        return
    endpoint = server.endpoint()
    for alias in source.extra_aliases():
        name = template_name(alias, template)
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            continue
        building = f"{name}_b{os.getpid()}"
        admin.execute(f'DROP DATABASE IF EXISTS "{building}"')
        admin.execute(f'CREATE DATABASE "{building}" TEMPLATE template0')
        try:
            conninfo = endpoint.conninfo(building)
            run_with_timeout(lambda c=conninfo, a=alias: migrate(a, c),  # type: ignore[misc]
                             timeout=settings.migration_timeout, inspect=postgres_inspector(conninfo),
                             what=f"Django migrate --database={alias}")
            install_bookkeeping(conninfo, settings.seed_tables)
        except BaseException:
            admin.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
            raise
        admin.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
        admin.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE true')


def _reap_existing(server: ExistingPostgres, admin: Any) -> list[str]:
    """Drop the per-run databases of runs that are provably gone; returns a line per database dropped.

    A database is dropped only when it carries testbed's marker and an owner row, and the owner's liveness
    lock can be taken (the owning session is gone, on whatever host or PID namespace it ran). Anything
    else named like testbed's, a user's database included, is left alone.
    """
    from testbed.schema.template import read_owner

    dropped: list[str] = []
    rows = admin.execute(r"SELECT datname FROM pg_database WHERE datname LIKE 'testbed\_r%' AND datallowconn "
                         "ORDER BY datname").fetchall()
    for (datname,) in rows:
        if datname.startswith(server.db_prefix + "_"):
            continue
        try:
            with server.connect(datname, autocommit=True) as conn:
                owner = read_owner(conn)
        except TestbedError:
            continue  # gone meanwhile, or not ours to enter
        if owner is None:
            continue
        got = admin.execute("SELECT pg_try_advisory_lock(%s, %s)", (owner.lock_class, owner.lock_key)).fetchone()
        if not got or not got[0]:
            continue  # its run is alive
        try:
            admin.execute(f'DROP DATABASE IF EXISTS "{datname}" WITH (FORCE)')
            dropped.append(f"dropped {datname} left by {owner.describe()}")
        finally:
            admin.execute("SELECT pg_advisory_unlock(%s, %s)", (owner.lock_class, owner.lock_key))
    return dropped


class KeptPostgres(ExistingPostgres):
    """A server a keeper runs between runs (runners/keeper.py), used by this run like an existing server: a
    template per migrations hash, databases of the run's own; reached over its private unix socket."""

    def __init__(self, settings: ServiceSettings, kept: PostgresEndpoint, kept_content: str) -> None:
        super().__init__(dataclasses.replace(settings, url=kept.database_url("postgres")))
        self.kept = kept
        self.kept_content = kept_content  # the content key of the cluster the keeper started from
        self.known_templates: frozenset[str] = frozenset()  # what the keeper said the server holds
        self.run_content = ""  # this run's migrations hash, when the run computed it already

    def connect(self, dbname: str | None = None, **kwargs: Any) -> psycopg.Connection[Any]:
        import psycopg

        return psycopg.connect(**self.kept.conninfo(dbname or "postgres"), connect_timeout=5, **kwargs)

    def start(self, root: Path) -> KeptPostgres:
        """The run's template on the kept server (built once per migrations hash). Lighter than an existing
        server's start: the keeper owns the server and drops each run's databases when the run ends or dies
        (keeper.claim), so there is no liveness lock to hold and no dead run's database to look for."""
        self.version = self.kept.version
        prepare_existing(self, root, shared=False)
        return self

    def stop(self) -> None:
        """Nothing to release: the run's databases go back to the keeper with their claims."""

    def endpoint(self) -> PostgresEndpoint:
        return dataclasses.replace(self.kept, template=self.template, db_prefix=self.db_prefix, owner=None,
                                   source=f"{self.kept.source}, kept between runs")

    def describe(self) -> Mapping[str, str]:
        return {"engine": "PostgreSQL", "version": self.version, "binary": self.kept.binary,
                "source": f"{self.kept.source}; a kept server, adopted (pid {self.kept.pid})",
                "url": self.kept.url, "data": "the kept server's",
                "cache": "hit" if self.cache_hit else "built"}


class PostgresEngine(SqlEngine):
    programs = ("postgres", "postmaster", "initdb", "pg_ctl")
    name = "postgres"
    label = "PostgreSQL"
    settings_class = PostgresSettings
    endpoint_class = PostgresEndpoint
    plugin = "testbed.plugin.sql"
    reusable = True
    worker_modules = ("testbed.isolation.worker",)
    kept_shape = "jsonlog"  # kept servers of older testbed builds wrote no structured log: not adopted

    def content_key(self, settings: ServiceSettings, root: Path) -> str:
        assert isinstance(settings, SqlSettings)
        return template_builder(settings, root)[0]

    def keep(self, settings: ServiceSettings, content_key: str) -> Running:
        return PostgresServer(settings, content_key=content_key).start()

    def adopt(self, settings: ServiceSettings, root: Path, workers: tuple[str | None, ...],
              kept: Mapping[str, Any], kept_content: str) -> Running:
        endpoint = PostgresEndpoint.from_dict(kept)
        assert isinstance(endpoint, PostgresEndpoint)
        server = KeptPostgres(settings, endpoint, kept_content)
        server.known_templates = frozenset(dict(kept.get("kept_info") or {}).get("templates", ()))
        server.run_content = str(kept.get("run_content_key") or "")
        return server.start(root)

    def discover(self, settings: ServiceSettings) -> list[Candidate]:
        return discover(settings)

    def choose_binary(self, settings: ServiceSettings) -> Candidate:
        return choose_binary(settings)

    def start_local(self, settings: ServiceSettings, root: Path, workers: tuple[str | None, ...]) -> Running:
        assert isinstance(settings, SqlSettings)
        key, build = template_builder(settings, root)
        return PostgresServer(settings, workers=workers, content_key=key, build=build).start()

    def attach(self, settings: ServiceSettings, root: Path, workers: tuple[str | None, ...]) -> Running:
        return ExistingPostgres(settings).start(root)

    def database_url(self, endpoint: Endpoint, dbname: str) -> str:
        assert isinstance(endpoint, PostgresEndpoint)
        return endpoint.database_url(dbname)

    def database_view(self, endpoint: Endpoint, dbname: str) -> dict[str, str]:
        view = super().database_view(endpoint, dbname)
        view["sqlalchemy_url"] = view["url"].replace("postgresql://", "postgresql+psycopg://", 1)
        view["asyncpg_url"] = view["url"].replace("postgresql://", "postgresql+asyncpg://", 1)
        view["psycopg_async_url"] = view["sqlalchemy_url"]
        return view

    def worker_database(self, endpoint: Endpoint, worker_id: str, settings: ServiceSettings) -> Any:
        from testbed.isolation.worker import WorkerDatabase

        assert isinstance(endpoint, PostgresEndpoint)
        return WorkerDatabase(endpoint, worker_id)


ENGINE = PostgresEngine()
