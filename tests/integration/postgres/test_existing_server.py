"""runner = "existing": a server testbed did not start, here a password-protected one testbed starts for
the test (standing in for a team's shared server), so these tests run on every machine.

testbed only creates databases there (a template per migrations hash, kept for the next run; per-run
worker databases, dropped) and drops only what it can prove is its own and dead: the marker and owner
row inside the database, and the owner's advisory lock, which works across hosts and PID namespaces.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from testbed.config import ServiceSettings
from testbed.services.postgres import PostgresServer


@pytest.fixture(scope="module")
def shared_url() -> Iterator[str]:
    server = PostgresServer(ServiceSettings(engine="postgres")).start()
    try:
        yield server.url("postgres")  # loopback TCP, scram password: like a real shared server
    finally:
        server.stop()


def _databases(url: str) -> set[str]:
    with psycopg.connect(url, connect_timeout=5) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database").fetchall()}


def _project(path: Path, url: str, extra: str = "") -> Path:
    (path / "migrations").mkdir(parents=True, exist_ok=True)
    (path / "migrations" / "001.sql").write_text("CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL);\n")
    (path / "pyproject.toml").write_text(
        f'[tool.testbed.postgres]\nrunner = "existing"\nurl = "{url}"\nmigrations = "migrations/"\n{extra}'
    )
    return path


@pytest.fixture
def existing(pytester: pytest.Pytester, shared_url: str) -> pytest.Pytester:
    _project(pytester.path, shared_url)
    return pytester


def test_isolation_on_an_existing_server_leaves_only_the_template(existing: pytest.Pytester, shared_url: str) -> None:
    before = _databases(shared_url)
    existing.makepyfile(
        """
        import psycopg
        import pytest

        def test_a(db, postgres):
            assert postgres.binary == "(existing server)"
            db.execute("insert into items (name) values ('a')")
            assert db.execute("select count(*) from items").fetchone() == (1,)

        def test_b(db):
            assert db.execute("select count(*) from items").fetchone() == (0,)

        @pytest.mark.testbed(isolation="truncate")
        def test_c(db_url):
            with psycopg.connect(db_url) as conn:
                conn.execute("insert into items (name) values ('c')")

        @pytest.mark.testbed(isolation="clone")
        def test_d(db):
            assert db.execute("select count(*) from items").fetchone() == (0,)
        """
    )
    existing.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=4)
    after = _databases(shared_url)
    templates = {name for name in after if name.startswith("testbed_tpl_")}
    # Only the template is left: built by this run, or by an earlier test of this module (same migrations,
    # same server) when the random order ran one first.
    assert len(templates) == 1 and after - before <= templates, (after - before, templates)
    # a second run reuses that template and again leaves nothing else behind
    existing.runpytest_subprocess("-p", "no:randomly", "-n", "2").assert_outcomes(passed=4)
    assert _databases(shared_url) == after


def test_wrong_version_pin_against_existing_server(pytester: pytest.Pytester, shared_url: str) -> None:
    _project(pytester.path, shared_url, 'version = "9"\n')
    pytester.makepyfile("def test_x(db):\n    pass\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*PostgreSQL 9 requested, but the existing server at 127.0.0.1:* is *"])


def test_databases_named_like_testbeds_but_not_its_own_survive(existing: pytest.Pytester, shared_url: str) -> None:
    # A user's databases that happen to match testbed's naming, one even cloned from testbed's template
    # (so it carries the testbed marker, but no owner row): none may be dropped.
    existing.makepyfile("def test_x(db):\n    pass\n")
    existing.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=1)  # builds the template
    template = next(d for d in _databases(shared_url) if d.startswith("testbed_tpl_"))
    lookalikes = ["testbed_r12345_gw0", "testbed_rdeadbeef_main"]
    with psycopg.connect(shared_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{lookalikes[0]}"')
        admin.execute(f'CREATE DATABASE "{lookalikes[1]}" TEMPLATE "{template}"')
    try:
        existing.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=1)
        assert set(lookalikes) <= _databases(shared_url)
    finally:
        with psycopg.connect(shared_url, autocommit=True) as admin:
            for name in lookalikes:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


HANGING = """
import time
from pathlib import Path

def test_hang(db):
    Path("started").write_text("1")
    time.sleep(120)
"""


def test_a_killed_runs_databases_are_dropped_by_the_next(
    existing: pytest.Pytester, shared_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    before = _databases(shared_url)
    hang = tmp_path_factory.mktemp("hang")
    _project(hang, shared_url)
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
    existing.makepyfile("def test_x(db):\n    pass\n")
    deadline = time.monotonic() + 10  # the server notices the killed client's closed socket at once
    while True:
        existing.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=1)
        if not left & _databases(shared_url) or time.monotonic() > deadline:
            break
    assert not left & _databases(shared_url)


PARALLEL = """
import time
from pathlib import Path

ROOT = Path({root!r})

def test_run(db, postgres):
    (ROOT / "{me}.started").write_text(postgres.url)
    deadline = time.monotonic() + 60
    # a waits until b has started (b's session start would reap a's database) and finished
    while not (ROOT / "{other}.started").exists() or ("{me}" == "a" and not (ROOT / "b.done").exists()):
        assert time.monotonic() < deadline, "the other run never got going"
        time.sleep(0.05)
    db.execute("insert into items (name) values ('{me}')")
    assert db.execute("select count(*) from items").fetchone() == (1,)
    (ROOT / "{me}.done").write_text("1")
"""


def test_two_runs_in_different_pid_namespaces_share_one_server(existing: pytest.Pytester, shared_url: str) -> None:
    """Each run sees the other's pid as dead (another PID namespace): only the advisory lock tells."""
    root = existing.path
    procs = []
    for me, other in (("a", "b"), ("b", "a")):
        folder = _project(root / me, shared_url)
        (folder / f"test_{me}.py").write_text(PARALLEL.format(me=me, other=other, root=str(root)))
        log = open(root / f"{me}.log", "wb")  # noqa: SIM115 - closed below
        procs.append((log, subprocess.Popen(
            ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-m", "pytest", "-q", "-p", "no:randomly",
             "-p", "no:cacheprovider"], cwd=folder, stdout=log, stderr=subprocess.STDOUT)))
        deadline = time.monotonic() + 60
        while me == "a" and not (root / "a.started").exists():
            assert procs[0][1].poll() is None and time.monotonic() < deadline, (root / "a.log").read_text()
            time.sleep(0.05)
    for log, proc in procs:
        proc.wait(120)
        log.close()
    for me, (_log, proc) in zip("ab", procs, strict=True):
        assert proc.returncode == 0, (root / f"{me}.log").read_text()
    urls = {(root / f"{me}.started").read_text() for me in "ab"}
    assert len(urls) == 2, "both runs used the same database"
