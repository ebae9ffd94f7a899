"""MariaDB / MySQL: which binary, how it is initialised, started, made ready, and stopped; the migrated
template; an existing server.

Start-up is fast because nothing is done twice: `mariadb-install-db` (or `mysqld --initialize-insecure`)
runs once per binary and its data folder is cached; a data folder whose template database was built from
unchanged migrations is cached too (keyed by their content hash), so a usual session start is: copy a
ready data folder to tmpfs, exec `mariadbd`, poll its private socket every 5 ms.

The server runs tuned for disposable data (no binary log, no doublewrite, redo log not flushed per
commit, small buffers), reads no option file (`--no-defaults`, so /etc/mysql is ignored), listens on
loopback only with a dynamic port, and has a fresh generated password for TCP; testbed itself talks to
it as root over the private unix socket. Per-worker databases and per-test isolation are in
``testbed.isolation.mysql``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qs, quote, unquote, urlsplit

from testbed.config import ServiceSettings, SqlSettings
from testbed.engines.base import Endpoint, Running, SqlEngine
from testbed.engines.settings import MysqlSettings as MysqlSettings  # where it was defined before
from testbed.errors import (
    BinaryNotFoundError,
    ConfigError,
    GuardError,
    MigrationError,
    ServerDiedError,
    ServerStartError,
    VersionMismatchError,
)
from testbed.runners import binaries, discovery
from testbed.runners.binaries import Candidate
from testbed.runners.managed import ManagedServer
from testbed.runners.ports import LOOPBACK
from testbed.runners.process import log_tail
from testbed.runners.tree_cache import DATA_HINT
from testbed.runners.users import chown_tree

if TYPE_CHECKING:
    import pymysql.connections




SUPERUSER = "root"
TEMPLATE_DB = "testbed_template"
# Registry of the databases testbed created on this server: the guard for truncate/drop/clone.
ADMIN_DB = "testbed_admin"
# Bumped whenever the install arguments or the data folder layout change, so old caches are not reused.
CACHE_FORMAT = "2"
BOUNDARY = "MariaDB"
# Options that must be identical when the data folder is created and when the server runs on it
# (InnoDB refuses, or rewrites files, when the system tablespace or redo log layout differs).
LAYOUT_OPTIONS = {
    "innodb_log_file_size": "2M",
    "innodb_data_file_path": "ibdata1:4M:autoextend",
    # Grow the system tablespace in small steps (default 64 MiB): every start copies the data folder.
    "innodb_autoextend_increment": "2",
}
TUNED = {
    # Test data is disposable: nothing waits for the disk.
    "innodb_flush_log_at_trx_commit": "0",
    "innodb_doublewrite": "0",
    "sync_binlog": "0",
    "innodb_buffer_pool_size": "64M",
    # ibtmp1 is otherwise written out in full (12 MiB) at every start.
    "innodb_temp_data_file_path": "ibtmp1:1M:autoextend",
    "loose_innodb_buffer_pool_load_at_startup": "0",
    "loose_innodb_buffer_pool_dump_at_shutdown": "0",
    "performance_schema": "OFF",
    "max_connections": "200",
    "character_set_server": "utf8mb4",
    "collation_server": "utf8mb4_unicode_ci",
    "default_time_zone": "+00:00",
    "loose_feedback": "OFF",
}
FLAGS = ("--skip-log-bin", "--skip-name-resolve", "--skip-host-cache")
SERVER_NAMES = ("mariadbd", "mysqld")
SYSTEM_GLOBS = (
    "/usr/sbin/mariadbd",
    "/usr/sbin/mysqld",
    "/usr/libexec/mariadbd",  # RHEL/Fedora
    "/usr/libexec/mysqld",
    "/usr/local/mysql/bin/mysqld",  # MySQL tarballs
    "/opt/homebrew/opt/mariadb*/bin/mariadbd",
    "/opt/homebrew/opt/mysql*/bin/mysqld",
    "/usr/local/opt/mariadb*/bin/mariadbd",
    "/usr/local/opt/mysql*/bin/mysqld",
)


def parse_server_version(text: str) -> tuple[str, str]:
    """(flavor, version) from ``mariadbd --version``; flavor is "MariaDB" or "MySQL", ("", "") if neither.

    "mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu" -> ("MariaDB", "10.11.19");
    "mysqld  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)" -> ("MySQL", "8.0.36").
    """
    if " Ver " not in text:
        return "", ""
    version = binaries.parse_version(text.split(" Ver ", 1)[1])
    if not version:
        return "", ""
    flavor = "MariaDB" if "mariadb" in text.lower() else "MySQL"
    return flavor, version


def version_text(path: str) -> str:
    """``<path> --version`` (remembered across runs: see testbed.runners.binaries.run_version)."""
    return binaries.run_version(path)


def _server_version(path: str) -> str:
    return parse_server_version(version_text(path))[1]


def flavor_of(path: str) -> str:
    """'MariaDB' or 'MySQL' for a server binary (the name errors use for the boundary)."""
    return parse_server_version(version_text(path))[0] or BOUNDARY


def _explicit(binary: str) -> str:
    p = Path(binary)
    if p.is_dir():
        for name in SERVER_NAMES:
            for sub in ("", "bin", "sbin"):
                if (p / sub / name).is_file():
                    return str(p / sub / name)
        return str(p / "mariadbd")
    return str(p)


SPEC = discovery.BinarySpec(
    engine="mysql",
    label="MariaDB/MySQL",
    names=SERVER_NAMES,
    system_globs=SYSTEM_GLOBS,
    pip_bundles=(),
    version_of=_server_version,
    install_hint=(
        "Install one: your system's package (e.g. `apt install mariadb-server`, `dnf install mariadb-server`, "
        "`brew install mariadb`), or set [tool.testbed.mysql] binary = '/path/to/mariadbd'."
    ),
    explicit=_explicit,
)


def discover(settings: ServiceSettings) -> list[Candidate]:
    """Every MariaDB/MySQL server binary found, in discovery order (config, PATH, system folders)."""
    return discovery.discover(SPEC, settings)


INSTALL_HINT = (
    "Install one: your system's package (e.g. `apt install mariadb-server`, `dnf install mariadb-server`, "
    "`brew install mariadb`), or set [tool.testbed.mysql] binary = '/path/to/mariadbd'."
)


def choose_binary(settings: ServiceSettings) -> Candidate:
    """The first binary of the pinned version; a clear error when there is none.

    A pin is a dotted prefix of the server version: "10.11" matches 10.11.19, "8" matches 8.0.36. It may
    name the flavor too ("mariadb-10.11", "mysql-8.0") when both are installed.
    """
    want_flavor, want_version = split_pin(settings.version)

    def matches(cand: Candidate) -> bool:
        if want_flavor and flavor_of(cand.path).lower() != want_flavor:
            return False
        return binaries.version_matches(want_version, cand.version)

    candidates = []
    for cand in discovery.iter_candidates(SPEC, settings):
        if matches(cand):
            return cand
        candidates.append(cand)
    if not candidates:
        discovery.choose(SPEC, settings, candidates)  # raises BinaryNotFoundError naming where it looked
    found_versions = sorted({".".join(c.version.split(".")[:2]) for c in candidates})
    raise VersionMismatchError(
        f"MariaDB/MySQL {settings.version} requested, but found only:\n{binaries.describe(candidates)}\n"
        f"Install {settings.version} (e.g. from https://mariadb.org/download/ or your system's packages) and "
        f"point [tool.testbed.mysql] binary at its mariadbd/mysqld, or change [tool.testbed.mysql] version "
        f"to one of: {', '.join(found_versions)}.",
        boundary=BOUNDARY,
    )


def split_pin(pin: str | None) -> tuple[str, str | None]:
    """'mariadb-10.11' -> ('mariadb', '10.11'); '10.11' -> ('', '10.11'); None -> ('', None)."""
    if not pin:
        return "", None
    lowered = pin.lower()
    for flavor in ("mariadb", "mysql"):
        if lowered.startswith(flavor):
            rest = lowered[len(flavor):].lstrip("-:@ ")
            return flavor, rest or None
    return "", pin


def install_command(binary: Candidate, datadir: Path) -> list[str]:
    """The command that creates an empty data folder (system tables) for ``binary``."""
    layout = [f"--{k.replace('_', '-')}={v}" for k, v in LAYOUT_OPTIONS.items()]
    if flavor_of(binary.path) == "MySQL":
        return [binary.path, "--no-defaults", "--initialize-insecure", f"--datadir={datadir}", *layout]
    server_dir = Path(binary.path).parent
    script = None
    for folder in (server_dir, server_dir.parent / "bin", server_dir.parent / "scripts"):
        for name in ("mariadb-install-db", "mysql_install_db"):
            if (folder / name).is_file():
                script = folder / name
                break
        if script:
            break
    if script is None:
        found = binaries.shutil_which("mariadb-install-db") or binaries.shutil_which("mysql_install_db")
        if found is None:
            raise BinaryNotFoundError(
                f"found the MariaDB server {binary.path} but not mariadb-install-db next to it or on PATH; it "
                "creates the system tables of a new data folder. Install the server package completely "
                "(`apt install mariadb-server`), or set [tool.testbed.mysql] binary to a full installation.",
                boundary=BOUNDARY,
            )
        script = Path(found)
    argv = [
        str(script), "--no-defaults", f"--datadir={datadir}", "--auth-root-authentication-method=normal",
        "--skip-test-db", "--skip-name-resolve", *layout,
    ]
    # The script finds mariadbd under its base folder (/usr -> /usr/sbin/mariadbd); a tarball or a
    # private build needs it spelled out.
    base = server_dir.parent
    if base != Path("/usr"):
        argv.insert(2, f"--basedir={base}")
    return argv


def connect_kwargs(socket: str, dbname: str | None = None) -> dict[str, Any]:
    """pymysql.connect keyword arguments for root over the private unix socket."""
    # ssl_disabled: PyMySQL >= 1.2 otherwise builds a TLS context for every connection ("preferred" TLS),
    # ~40 ms each, only to find the private socket needs none.
    kw: dict[str, Any] = {"unix_socket": socket, "user": SUPERUSER, "charset": "utf8mb4", "ssl_disabled": True}
    if dbname:
        kw["database"] = dbname
    return kw


def mysql_url(password: str, port: int, dbname: str = "", host: str = LOOPBACK) -> str:
    """A ``mysql://`` URL over loopback TCP (SQLAlchemy wants ``mysql+pymysql://``: see sqlalchemy_url)."""
    return f"mysql://{SUPERUSER}:{password}@{host}:{port}/{dbname}"


def sqlalchemy_url(url: str) -> str:
    """The same URL for SQLAlchemy with the PyMySQL driver."""
    return url.replace("mysql://", "mysql+pymysql://", 1)


class MysqlServer(ManagedServer):
    """A running MariaDB/MySQL server owned by this process."""

    engine_name = "mysql"
    run_prefix = "mysql"
    log_name = "mysqld.log"
    cache_layout = f"{CACHE_FORMAT}|{sorted(LAYOUT_OPTIONS.items())}"

    def __init__(self, settings: ServiceSettings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.flavor = BOUNDARY
        self.socket: Path | None = None

    # -- addresses ---------------------------------------------------------------------------------
    def url(self, dbname: str = "") -> str:
        """A URL over loopback TCP with the generated password (what an application uses)."""
        return mysql_url(self.password, self.port, dbname)

    def socket_kwargs(self, dbname: str | None = None) -> dict[str, Any]:
        """pymysql.connect keyword arguments over the private unix socket (root, no password)."""
        assert self.socket is not None
        return connect_kwargs(str(self.socket), dbname)

    def connect(self, dbname: str | None = None, **kwargs: Any) -> pymysql.connections.Connection[Any]:
        import pymysql

        self.check_alive("connecting")
        return pymysql.connect(**self.socket_kwargs(dbname), **kwargs)

    # -- the lifecycle hooks -----------------------------------------------------------------------
    def install_tree(self, binary: Candidate) -> str:
        return str(Path(os.path.realpath(binary.path)).parent.parent)

    def process_name(self) -> str:
        return self.flavor  # "MariaDB" or "MySQL": what errors name

    def new_password(self) -> str:
        return ""  # set once the server runs: the cached data folder never holds a usable TCP password

    def prepare(self) -> None:
        assert self.binary is not None and self.run_dir is not None
        self.flavor = flavor_of(self.binary.path)
        private = self.run_dir / "run"  # socket, pid file and tmpdir, owned by the server's user only
        private.mkdir(mode=0o700)
        chown_tree(str(private), self.run_as)
        self.socket = private / "mysqld.sock"
        # The slow query log (every statement once a run turns it on with long_query_time = 0), read by the
        # per-test transcript: readable by this run's user when the server runs as another one.
        (self.run_dir / "log").mkdir(mode=0o755)
        chown_tree(str(self.run_dir / "log"), self.run_as)

    def make_data_dir(self, target: Path, scratch: Path) -> None:
        """mariadb-install-db (or mysqld --initialize-insecure) into ``target``, as the server's user."""
        assert self.binary is not None
        log = scratch / "install.log"
        argv = install_command(self.binary, target)
        with open(log, "wb") as out:
            kwargs: dict[str, Any] = {}
            if self.run_as is not None:
                kwargs.update(user=self.run_as.uid, group=self.run_as.gid, extra_groups=[])
            try:
                rc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, cwd=scratch, timeout=300,
                                    **kwargs).returncode
            except subprocess.TimeoutExpired:
                rc = -1
        if rc != 0 or not (target / "mysql").is_dir():
            text = log.read_text(errors="replace")
            errors = [line for line in text.splitlines() if "[ERROR]" in line or line.startswith("ERROR")]
            said = "\n".join("    " + line for line in errors[:10]) if errors else log_tail(log)
            full = f"\n{scratch.parent} is full. {DATA_HINT}" if "No space left" in text else ""
            raise ServerStartError(
                f"creating the data folder failed (exit {rc}): {' '.join(argv)}\nIt said:\n{said}{full}",
                boundary=flavor_of(self.binary.path),
            )

    def command(self, building: bool) -> tuple[list[str], Mapping[str, str] | None]:
        assert self.binary and self.data_dir and self.socket
        private = self.socket.parent
        argv = [
            self.binary.path, "--no-defaults", f"--datadir={self.data_dir}", f"--socket={self.socket}",
            f"--pid-file={private / 'mysqld.pid'}", f"--tmpdir={private}", f"--bind-address={LOOPBACK}",
            f"--port={self.port}", *FLAGS,
        ]
        assert self.run_dir is not None
        logging = {"slow_query_log_file": str(self.run_dir / "log" / "slow.log"), "log_output": "FILE"}
        options = {**LAYOUT_OPTIONS, **TUNED, **logging, **self.settings.options}
        argv += [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
        return argv, None

    def ready(self) -> bool:
        import pymysql

        assert self.socket is not None
        if not self.socket.exists():
            return False
        conn = pymysql.connect(**self.socket_kwargs(), connect_timeout=2)
        conn.close()
        return True

    def populate(self) -> None:
        # Runs once per cached data folder: TCP root with a password (set per run), the template database
        # and the registry of databases testbed owns.
        with contextlib.closing(self.connect(autocommit=True)) as conn, conn.cursor() as cur:
            cur.execute("SELECT user, host FROM mysql.user WHERE user = '' OR (user = 'root' AND host NOT IN "
                        "('localhost', '127.0.0.1'))")
            for user, host in cur.fetchall():
                cur.execute("DROP USER %s@%s", (user, host))
            cur.execute("CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'")
            cur.execute("GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION")
            cur.execute(f"CREATE DATABASE `{ADMIN_DB}`")
            cur.execute(f"CREATE TABLE `{ADMIN_DB}`.owned (name VARCHAR(64) PRIMARY KEY, "
                        "created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP) ENGINE=InnoDB")
            # Write marks of the truncate strategy (see testbed.isolation.mysql): MEMORY, so a mark survives a
            # rollback and never holds a lock beyond its statement.
            cur.execute(f"CREATE TABLE `{ADMIN_DB}`.dirty (db VARCHAR(64) NOT NULL, tbl VARCHAR(64) NOT NULL, "
                        "conn BIGINT UNSIGNED NOT NULL, PRIMARY KEY (db, tbl, conn)) ENGINE=MEMORY")
            cur.execute(f"CREATE DATABASE `{TEMPLATE_DB}`")
            cur.execute(f"INSERT INTO `{ADMIN_DB}`.owned (name) VALUES (%s)", (TEMPLATE_DB,))

    def after_ready(self) -> None:
        # Fresh per run; the cached data folder never holds a usable TCP password.
        self.password = secrets.token_urlsafe(18)
        with contextlib.closing(self.connect(autocommit=True)) as conn, conn.cursor() as cur:
            cur.execute("ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY %s", (self.password,))

    def endpoint(self) -> MysqlEndpoint:
        assert self.socket is not None and self.location is not None
        assert self.run_dir is not None
        return MysqlEndpoint(**self.base_endpoint_fields(), socket=str(self.socket), password=self.password,
                             flavor=self.flavor, data_kind=self.location.kind,
                             statement_log=str(self.run_dir / "log" / "slow.log"))

    def describe(self) -> Mapping[str, str]:
        info = dict(super().describe())
        info["engine"] = self.flavor
        info["url"] = self.url()
        info["data"] = f"{self.data_dir} ({self.location.kind if self.location else '?'})"
        return info


@dataclass(frozen=True)
class ServerUrl:
    """``mysql://user:password@host:port/?unix_socket=/path``: a server testbed did not start."""

    user: str
    password: str
    host: str
    port: int
    unix_socket: str

    @classmethod
    def parse(cls, url: str) -> ServerUrl:
        u = urlsplit(url)
        if u.scheme.split("+")[0] not in ("mysql", "mariadb"):
            raise ConfigError(
                f"[tool.testbed.mysql] url = {url!r}: expected mysql://user:password@host:port/ "
                "(or mysql://user@localhost/?unix_socket=/path/to/mysqld.sock)."
            )
        query = parse_qs(u.query)
        return cls(
            user=unquote(u.username or SUPERUSER), password=unquote(u.password or ""),
            host=u.hostname or "localhost", port=u.port or 3306,
            unix_socket=query.get("unix_socket", [""])[0],
        )

    def url(self, dbname: str = "") -> str:
        auth = quote(self.user, safe="") + (":" + quote(self.password, safe="") if self.password else "")
        where = f"{self.host}:{self.port}" if not self.unix_socket else self.host
        tail = f"?unix_socket={self.unix_socket}" if self.unix_socket else ""
        return f"mysql://{auth}@{where}/{dbname}{tail}"

    def connect_kwargs(self, dbname: str | None = None) -> dict[str, Any]:
        kw: dict[str, Any] = {"user": self.user, "password": self.password, "charset": "utf8mb4"}
        if self.unix_socket:
            kw.update(unix_socket=self.unix_socket, ssl_disabled=True)
        else:
            kw.update(host=self.host, port=self.port)
        if dbname:
            kw["database"] = dbname
        return kw

    def redacted(self) -> str:
        return self.url().replace(quote(self.password, safe=""), "***") if self.password else self.url()


class ExistingMysqlServer:
    """A server that runs already (runner = "existing"): testbed neither starts nor stops it.

    Several runs may share it (see ``testbed.schema.mysql_owner``): each run's databases are named
    ``testbed_r<run>_<worker>`` and carry its marker, and the run holds a named lock while it lives; the
    migrated template is ``testbed_tpl_<hash>``, built once per migrations hash under a named lock and kept
    for later runs. testbed drops only its own databases, and another run's only when that run is gone.
    """

    def __init__(self, settings: ServiceSettings) -> None:
        if not settings.url:
            raise ConfigError("[tool.testbed.mysql] runner = 'existing' needs url = 'mysql://...'.")
        from testbed.schema.template import RunOwner

        self.settings = settings
        self.target = ServerUrl.parse(settings.url)
        self.flavor = BOUNDARY
        self.version = ""
        self.cache_hit = False
        self.binary: Candidate | None = None
        self.timings: dict[str, float] = {}
        self.owner = RunOwner()
        self.db_prefix = f"testbed_r{self.owner.run}"
        self.template = ""
        self.reaped: list[str] = []
        self._liveness: pymysql.connections.Connection[Any] | None = None

    def connect(self, dbname: str | None = None, **kwargs: Any) -> pymysql.connections.Connection[Any]:
        import pymysql

        return pymysql.connect(**self.target.connect_kwargs(dbname), **kwargs)

    def socket_kwargs(self, dbname: str | None = None) -> dict[str, Any]:
        return self.target.connect_kwargs(dbname)

    def url(self, dbname: str = "") -> str:
        return self.target.url(dbname)

    def start(
        self, *, content_key: str = "empty", build_template: Callable[..., None] | None = None,
        migration_timeout: float = 120.0,
    ) -> ExistingMysqlServer:
        """Check the server, take this run's liveness lock, drop dead runs' databases, build or reuse the
        template of ``content_key``."""
        import pymysql

        from testbed.schema import mysql_owner

        t0 = time.perf_counter()
        try:
            conn = self.connect(autocommit=True, connect_timeout=5)
        except pymysql.err.MySQLError as exc:
            raise ServerStartError(
                f"cannot reach the existing server {self.target.redacted()} configured in [tool.testbed.mysql] "
                f"url: {exc}. Start it, fix the url, or remove runner = 'existing' to let testbed run its own.",
                boundary=BOUNDARY,
            ) from None
        # This connection stays open for the run's life: it holds the run's liveness lock.
        self._liveness = conn
        try:
            with conn.cursor() as cur:
                self._check_version(cur)
                # First of all: a database carrying this run's marker must never exist without its lock.
                mysql_owner.hold_run_lock(conn, self.owner)
                cur.execute(f"CREATE DATABASE IF NOT EXISTS `{ADMIN_DB}`")
                cur.execute(f"CREATE TABLE IF NOT EXISTS `{ADMIN_DB}`.owned (name VARCHAR(64) PRIMARY KEY, "
                            "created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP) ENGINE=InnoDB")
                cur.execute(f"CREATE TABLE IF NOT EXISTS `{ADMIN_DB}`.dirty (db VARCHAR(64) NOT NULL, tbl "
                            "VARCHAR(64) NOT NULL, conn BIGINT UNSIGNED NOT NULL, PRIMARY KEY (db, tbl, conn)) "
                            "ENGINE=MEMORY")
                self.reaped = mysql_owner.reap(conn, self.owner.run)
                self._template(cur, content_key, build_template, migration_timeout)
        except BaseException:
            self.stop()
            raise
        self.timings["start_ms"] = (time.perf_counter() - t0) * 1000
        return self

    def _check_version(self, cur: Any) -> None:
        cur.execute("SELECT VERSION()")
        full = str(cur.fetchone()[0])
        self.flavor = "MariaDB" if "mariadb" in full.lower() else "MySQL"
        self.version = binaries.parse_version(full)
        want_flavor, want_version = split_pin(self.settings.version)
        if (want_flavor and want_flavor != self.flavor.lower()) or not binaries.version_matches(
            want_version, self.version
        ):
            raise VersionMismatchError(
                f"MariaDB/MySQL {self.settings.version} requested, but the existing server "
                f"{self.target.redacted()} is {self.flavor} {full}. Change [tool.testbed.mysql] version or url.",
                boundary=self.flavor,
            )

    def _template(
        self, cur: Any, content_key: str, build: Callable[..., None] | None, migration_timeout: float
    ) -> None:
        """Reuse the template of these migrations, or build it, once, while concurrent runs wait."""
        from testbed.schema import mysql_owner

        name = mysql_owner.template_name(content_key)
        lock = mysql_owner.template_lock(content_key)
        wait = int(migration_timeout) + 60
        cur.execute("SELECT GET_LOCK(%s, %s)", (lock, wait))
        got = cur.fetchone()
        if not got or got[0] != 1:
            raise ServerStartError(
                f"waited {wait} s for another run to build the template {name} on {self.target.redacted()} "
                f"(it holds the named lock {lock!r}; see SELECT IS_USED_LOCK('{lock}') and that connection in "
                "the processlist). Wait for it, or end it.",
                boundary=self.flavor,
            )
        try:
            cur.execute("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (name,))
            exists = cur.fetchone() is not None
            cur.execute(f"SELECT 1 FROM `{ADMIN_DB}`.owned WHERE name = %s", (name,))
            owned = cur.fetchone() is not None
            if exists and not owned:
                raise GuardError(
                    f"the existing server has a database {name!r} that testbed did not create; testbed "
                    "will neither use nor replace it. Rename or drop it yourself.",
                    boundary=self.flavor,
                )
            marker = mysql_owner.read_marker(cur, name) if exists else None
            if marker is not None and marker.get("key") == content_key:
                self.cache_hit = True
            else:
                if exists:  # testbed's, unfinished (its builder died under this lock): nobody copies from it
                    cur.execute(f"DROP DATABASE `{name}`")
                cur.execute(f"INSERT IGNORE INTO `{ADMIN_DB}`.owned (name) VALUES (%s)", (name,))
                cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
                try:
                    if build is not None:
                        build(self, name)
                    mysql_owner.mark(cur, name, template_key=content_key)  # last: the template is complete
                except BaseException:
                    cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
                    cur.execute(f"DELETE FROM `{ADMIN_DB}`.owned WHERE name = %s", (name,))
                    raise
        finally:
            cur.execute("SELECT RELEASE_LOCK(%s)", (lock,))
        self.template = name

    def log_tail(self, lines: int = 25) -> str:
        return "    (an existing server: its log is wherever its owner keeps it)"

    def endpoint(self) -> MysqlEndpoint:
        return MysqlEndpoint(
            host=self.target.host, port=self.target.port, socket=self.target.unix_socket,
            password=self.target.password, version=self.version, flavor=self.flavor, binary="(existing server)",
            source=f"existing server {self.target.redacted()}", pid=0, start_time=None, log_path="",
            data_kind="existing", existing_url=self.target.url(), template=self.template,
            db_prefix=self.db_prefix, owner=asdict(self.owner),
        )

    def check_alive(self, what: str = "the test") -> None:
        return None

    def stop(self) -> None:
        """Nothing to stop: the server is not ours. Releases the run's liveness lock."""
        if self._liveness is not None:
            with contextlib.suppress(Exception):
                self._liveness.close()
            self._liveness = None

    def describe(self) -> Mapping[str, str]:
        info = {
            "engine": self.flavor, "version": self.version, "binary": "(existing server)", "source": "url",
            "url": self.target.redacted(), "data": f"the existing server's ({self.template}, {self.db_prefix}_*)",
            "cache": "hit" if self.cache_hit else "built",
        }
        if self.reaped:
            info["cleaned"] = "; ".join(self.reaped)
        return info


@dataclass(frozen=True)
class MysqlEndpoint(Endpoint):
    """How to reach a server: ``url`` is the server (no database); ``database_url(name)`` one database."""

    label: ClassVar[str] = "MariaDB/MySQL"
    boundary: ClassVar[str] = BOUNDARY

    socket: str = ""
    password: str = ""
    flavor: str = BOUNDARY
    data_kind: str = ""
    # runner = "existing": the configured URL (user, password, host/port or unix_socket); pid is 0.
    existing_url: str = ""
    statement_log: str = ""  # the slow query log of a server testbed started ("" when none)
    template: str = TEMPLATE_DB  # the migrated template the worker databases are copied from
    db_prefix: str = "testbed"  # worker databases are <db_prefix>_<worker>
    owner: dict[str, Any] | None = None  # a shared server: the run whose marker its databases carry (RunOwner)

    @classmethod
    def of(cls, server: MysqlServer | ExistingMysqlServer) -> MysqlEndpoint:
        """The endpoint of a running server (kept for one release: use ``server.endpoint()``)."""
        return server.endpoint()

    @property
    def url(self) -> str:
        return self.database_url("")

    def database_url(self, dbname: str = "") -> str:
        """A ``mysql://`` URL (SQLAlchemy wants ``mysql+pymysql://``: see sqlalchemy_url)."""
        if self.existing_url:
            return ServerUrl.parse(self.existing_url).url(dbname)
        return mysql_url(self.password, self.port, dbname, self.host)

    def connect_kwargs(self, dbname: str | None = None) -> dict[str, Any]:
        """pymysql.connect keyword arguments over the private unix socket."""
        if self.existing_url:
            return ServerUrl.parse(self.existing_url).connect_kwargs(dbname)
        return connect_kwargs(self.socket, dbname)

    def connect(self, dbname: str | None = None, **kwargs: Any) -> pymysql.connections.Connection[Any]:
        """A PyMySQL connection as root over the private socket; ServerDiedError if the server is gone."""
        import pymysql

        self.check_alive("connecting")
        try:
            return pymysql.connect(**self.connect_kwargs(dbname), **kwargs)
        except pymysql.err.OperationalError:
            self.check_alive("connecting")
            raise

    def alive(self) -> bool:
        if self.existing_url:
            return True  # not ours to watch: connection errors speak for it
        return super().alive()

    def died_error(self, what: str = "the test") -> ServerDiedError:
        return ServerDiedError(
            f"{self.flavor} (pid {self.pid}, port {self.port}) is no longer running ({what}). "
            f"Its last log lines ({self.log_path}):\n{self.log_tail()}",
            boundary=self.flavor,
        )

    def check_alive(self, what: str = "the test", settle: float = 0.0) -> None:
        """Raise ServerDiedError with the server's last log lines if it is gone."""
        if not self.alive():
            raise self.died_error(what)


def template_builder(settings: SqlSettings, root: Path) -> tuple[str, Callable[..., None]]:
    """The cache key of the project's migrated template and the function that builds it."""
    from testbed.schema.migrations import migration_source
    from testbed.schema.mysql_migrations import apply_migrations, content_key

    source = migration_source(settings.migrations, root, "mysql")
    key = content_key(source)

    def build(server: MysqlServer | ExistingMysqlServer, dbname: str = TEMPLATE_DB) -> None:
        from testbed import handoff

        # [tool.testbed.env] variables naming MariaDB point at the template while it is migrated: an env.py
        # that reads the application's settings migrates the template, not the database they name elsewhere.
        view = ENGINE.database_view(server.endpoint(), dbname)
        try:
            with handoff.environment(handoff.app_environment(root, "mysql", view)):
                apply_migrations(source, server.socket_kwargs(dbname), server.url(dbname),
                                 flavor=server.flavor, timeout=settings.migration_timeout)
        except MigrationError as exc:
            raise MigrationError(
                f"{exc.args[0]}\n{server.flavor}'s last log lines:\n{server.log_tail(10)}", boundary=exc.boundary
            ) from None

    return key, build


class MysqlEngine(SqlEngine):
    programs = ("mariadbd", "mysqld", "mariadb-install-db", "mysql_install_db")
    worker_modules = ("testbed.isolation.mysql",)
    name = "mysql"
    label = "MariaDB/MySQL"
    settings_class = MysqlSettings
    endpoint_class = MysqlEndpoint
    plugin = "testbed.plugin.sql"

    def discover(self, settings: ServiceSettings) -> list[Candidate]:
        return discover(settings)

    def choose_binary(self, settings: ServiceSettings) -> Candidate:
        return choose_binary(settings)

    def start_local(self, settings: ServiceSettings, root: Path, workers: tuple[str | None, ...]) -> Running:
        assert isinstance(settings, SqlSettings)
        key, build = template_builder(settings, root)
        return MysqlServer(settings, workers=workers, content_key=key, build=build).start()

    def attach(self, settings: ServiceSettings, root: Path, workers: tuple[str | None, ...]) -> Running:
        assert isinstance(settings, SqlSettings)
        key, build = template_builder(settings, root)
        return ExistingMysqlServer(settings).start(content_key=key, build_template=build,
                                                   migration_timeout=settings.migration_timeout)

    def database_url(self, endpoint: Endpoint, dbname: str) -> str:
        assert isinstance(endpoint, MysqlEndpoint)
        return endpoint.database_url(dbname)

    def database_view(self, endpoint: Endpoint, dbname: str) -> dict[str, str]:
        view = super().database_view(endpoint, dbname)
        view["sqlalchemy_url"] = view["url"].replace("mysql://", "mysql+pymysql://", 1)
        assert isinstance(endpoint, MysqlEndpoint)
        view["user"] = ServerUrl.parse(endpoint.existing_url).user if endpoint.existing_url else SUPERUSER
        return view

    def worker_database(self, endpoint: Endpoint, worker_id: str, settings: ServiceSettings) -> Any:
        from testbed.isolation.mysql import MysqlWorkerDatabase

        assert isinstance(endpoint, MysqlEndpoint) and isinstance(settings, SqlSettings)
        return MysqlWorkerDatabase(endpoint, worker_id, settings.seed_tables).setup()


ENGINE = MysqlEngine()


@contextlib.contextmanager
def running_server(settings: ServiceSettings, **start_kwargs: Any) -> Iterator[MysqlServer]:
    """A started server (no migrations), stopped and removed on exit."""
    server = MysqlServer(settings, **start_kwargs)
    try:
        yield server.start()
    finally:
        server.stop()
