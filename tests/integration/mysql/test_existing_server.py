"""runner = "existing": a server testbed did not start, here a password-protected one testbed starts for
the test (standing in for a team's shared server; never the system server on 3306).

Several runs may share that server: each run's databases are testbed_r<run>_<worker> with the run's
marker inside, the run holds a named lock while it lives, and a database is dropped only when its marker
names a run whose lock is free. The template is one per migrations hash, built once under a named lock.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from testbed.config import ServiceSettings
from testbed.engines.mysql import template_builder
from testbed.engines.settings import MysqlSettings
from testbed.errors import GuardError, ServerStartError, VersionMismatchError
from testbed.provision_mysql import running, start_mysql
from testbed.services.mysql import ServerUrl, running_server

MIGRATIONS = Path(__file__).parent / "migrations"


@pytest.fixture
def existing_url() -> Iterator[str]:
    """A password-protected server testbed starts itself, standing in for one the team runs: the test
    needs nothing from the machine and touches no server of anyone else."""
    with running_server(ServiceSettings(engine="mysql")) as server:
        yield server.url()  # mysql://root:<password>@127.0.0.1:<port>/ over loopback TCP


@pytest.fixture(scope="module")
def shared_url() -> Iterator[str]:
    with running_server(ServiceSettings(engine="mysql")) as server:
        yield server.url()


@contextlib.contextmanager
def _admin(url: str) -> Iterator[pymysql.cursors.Cursor]:
    with contextlib.closing(pymysql.connect(**ServerUrl.parse(url).connect_kwargs(), autocommit=True)) as conn, \
            conn.cursor() as cur:
        yield cur


def _databases(url: str) -> set[str]:
    with _admin(url) as cur:
        cur.execute("SHOW DATABASES")
        return {str(r[0]) for r in cur.fetchall()}


def _project(path: Path, url: str) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "migrations").mkdir(exist_ok=True)
    (path / "migrations" / "001.sql").write_text(
        "CREATE TABLE items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50) NOT NULL);\n"
    )
    (path / "pyproject.toml").write_text(
        f'[tool.testbed.mysql]\nrunner = "existing"\nurl = "{url}"\nmigrations = "migrations/"\n'
    )
    return path


def test_existing_server_template_isolation_and_errors(existing_url: str, migrations_copy: Path) -> None:
    settings = ServiceSettings(engine="mysql", runner="existing", url=existing_url, migrations=str(MIGRATIONS))
    before = _databases(existing_url)
    with running(settings) as m:
        assert not m.server.cache_hit
        prefix = m.server.db_prefix
        assert re.fullmatch(r"testbed_r[0-9a-f]{8}", prefix)
        assert m.url.startswith("mysql://root:") and m.url.split("?")[0].endswith(f"/{prefix}_main")
        template = m.server.template
        assert template.startswith("testbed_tpl_")
        with m.database.isolated("t", "truncate") as ctx, ctx.connection.cursor() as cur:
            cur.execute("INSERT INTO customers (name) VALUES ('x')")
            ctx.connection.commit()
        with m.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM customers")
            assert cur.fetchone()[0] == 0
            cur.execute("SELECT COUNT(*) FROM plans")
            assert cur.fetchone()[0] == 2
            cur.execute("SHOW TABLES")  # the marker is a function: the application's tables are as migrated
            assert {r[0] for r in cur.fetchall()} == {"audit", "customers", "orders", "plans", "plan_features",
                                                      "customer_orders"}
    # The run dropped its own database; the template stays for the next run.
    assert _databases(existing_url) - before == {template}
    again = start_mysql(settings)
    try:
        assert again.cache_hit and again.template == template  # same migrations: the template is reused
    finally:
        again.stop()
    # One test for all checks: each is quick, and the server is this test's own.
    with pytest.raises(VersionMismatchError, match="requested, but the existing server"):
        start_mysql(ServiceSettings(engine="mysql", runner="existing", url=existing_url, version="5.1"))
    with pytest.raises(ServerStartError, match="cannot reach the existing server"):
        start_mysql(ServiceSettings(engine="mysql", runner="existing",
                                    url="mysql://root:pw@127.0.0.1:1/"))
    # Someone else's database named like the template of other migrations: neither used nor replaced.
    (migrations_copy / "004_more.sql").write_text("CREATE TABLE more_things (id INT PRIMARY KEY);\n")
    other = MysqlSettings(engine="mysql", runner="existing", url=existing_url, migrations=str(migrations_copy))
    theirs = "testbed_tpl_" + template_builder(other, migrations_copy.parent)[0][:20]
    with _admin(existing_url) as cur:
        cur.execute(f"CREATE DATABASE {theirs}")
        cur.execute(f"CREATE TABLE {theirs}.precious (id INT)")
    with pytest.raises(GuardError, match="did not create"):
        start_mysql(other)
    with _admin(existing_url) as cur:
        cur.execute(f"SHOW TABLES FROM {theirs}")
        assert cur.fetchall() == (("precious",),)


LOOKALIKES = {
    "testbed_main": "",  # the name testbed used for every run before names carried a run id
    "testbed_r12345678_main": "",
    "testbed_rcafef00d_gw0": "",
    # a copy of another run's database restored under a name of its own: the marker names another run
    "testbed_rdeadbeef_gw1": """CREATE FUNCTION testbed_rdeadbeef_gw1.testbed_owner() RETURNS VARCHAR(500)
                                RETURN '{"testbed": "run", "run": "0badc0de", "host": "h", "pid": 1}'""",
    # a function of that name that is not testbed's marker
    "testbed_r0badf00d_main": "CREATE FUNCTION testbed_r0badf00d_main.testbed_owner() RETURNS INT RETURN 1",
}


def test_databases_named_like_testbeds_but_not_its_own_survive(pytester: pytest.Pytester, shared_url: str) -> None:
    _project(pytester.path, shared_url)
    with _admin(shared_url) as cur:
        for name, extra in LOOKALIKES.items():
            cur.execute(f"CREATE DATABASE {name}")
            cur.execute(f"CREATE TABLE {name}.mine (note VARCHAR(20))")
            cur.execute(f"INSERT INTO {name}.mine VALUES ('keep me')")
            if extra:
                cur.execute(extra)
    try:
        pytester.makepyfile("def test_x(mysql_db):\n    pass\n")
        pytester.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=1)
        with _admin(shared_url) as cur:
            for name in LOOKALIKES:
                cur.execute(f"SELECT note FROM {name}.mine")
                assert cur.fetchall() == (("keep me",),), name
    finally:
        with _admin(shared_url) as cur:
            for name in LOOKALIKES:
                cur.execute(f"DROP DATABASE IF EXISTS {name}")


HANGING = """
import time
from pathlib import Path

def test_hang(mysql_db):
    Path("started").write_text("1")
    time.sleep(120)
"""


def test_a_killed_runs_databases_are_dropped_by_the_next(
    pytester: pytest.Pytester, shared_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    before = _databases(shared_url)
    hang = _project(tmp_path_factory.mktemp("hang"), shared_url)
    (hang / "test_hang.py").write_text(HANGING)
    with subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"],
                          cwd=hang, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT) as proc:
        deadline = time.monotonic() + 60
        while not (hang / "started").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the hanging run did not start"
            time.sleep(0.05)
        proc.kill()
    left = {d for d in _databases(shared_url) - before if d.startswith("testbed_r")}
    assert left, "the killed run left nothing: the test would prove nothing"
    _project(pytester.path, shared_url)
    pytester.makepyfile("def test_x(mysql_db):\n    pass\n")
    deadline = time.monotonic() + 10  # the server notices the killed client's closed socket at once
    while True:
        pytester.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=1)
        if not left & _databases(shared_url) or time.monotonic() > deadline:
            break
    assert not left & _databases(shared_url)


CONCURRENT = """
import time
from pathlib import Path

ROOT = Path({root!r})

def test_run_{n}(mysql_db, testbed_mysql_database):
    me = "{me}"
    (ROOT / f"{{me}}.{n}.started").write_text(testbed_mysql_database.dbname)
    deadline = time.monotonic() + 90
    # a waits until b and c have started and finished: their session starts and ends happen under its feet
    while me == "a" and not ((ROOT / "b.done").exists() and (ROOT / "c.done").exists()):
        assert time.monotonic() < deadline, "the other runs never finished"
        time.sleep(0.05)
    with mysql_db.cursor() as cur:
        cur.execute("INSERT INTO items (name) VALUES (%s)", (me,))
        cur.execute("SELECT name FROM items")
        assert cur.fetchall() == ((me,),)
"""


def test_concurrent_runs_share_one_server(pytester: pytest.Pytester, shared_url: str) -> None:
    """a, b (other PID namespaces: each sees the others' pids as dead) and c (-n 2) at once: all pass, and
    none loses its database to another's session start or end."""
    root = pytester.path
    runs = {"a": (1, []), "b": (1, []), "c": (4, ["-n", "2"])}
    procs = {}
    for me, (tests, extra) in runs.items():
        folder = _project(root / me, shared_url)
        for n in range(tests):
            (folder / f"test_{me}{n}.py").write_text(CONCURRENT.format(me=me, n=n, root=str(root)))
        log = open(root / f"{me}.log", "wb")  # noqa: SIM115 - closed below
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", *extra]
        procs[me] = (log, subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", *argv], cwd=folder,
                                           stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 60
        while me == "a" and not (root / "a.0.started").exists():
            assert procs["a"][1].poll() is None and time.monotonic() < deadline, (root / "a.log").read_text()
            time.sleep(0.05)
    for me in ("b", "c"):
        procs[me][1].wait(120)
        (root / f"{me}.done").write_text("1")
    procs["a"][1].wait(120)
    for me, (log, proc) in procs.items():
        log.close()
        assert proc.returncode == 0, (root / f"{me}.log").read_text()
    names = {(root / f"{me}.{n}.started").read_text() for me, (tests, _) in runs.items() for n in range(tests)}
    assert len({n.rsplit("_", 1)[0] for n in names}) == 3, names  # one run id each
    assert not {d for d in _databases(shared_url) if d.startswith("testbed_r")}, "a run left its databases"
