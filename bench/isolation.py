"""Per-test isolation overhead: testbed's strategies vs truncate-all and pytest-postgresql's per-test database.

Part 1, in one process, on one testbed PostgreSQL 15 server (tuned, data on tmpfs when there is one) with a
50-table schema (``id bigserial PRIMARY KEY, parent_id bigint REFERENCES <previous table>(id), name text NOT
NULL, created_at timestamptz`` + an index on name; FK chains t0 <- t1 <- t2 and t3 <- t4 <- ... <- t49,
t0 and t3 referencing themselves). Each test body inserts 10 FK-linked rows into t0, t1, t2 (4 + 3 + 3),
committed for every strategy except rollback. Variants, interleaved per repetition (fixed-seed shuffle)
after an untimed warm-up that also checks t0-t2 are empty again after each:

- rollback:      ``WorkerDatabase.begin(name, "rollback")`` / ``end(ctx)`` (testbed's default)
- truncate:      ``begin(name, "truncate")`` / ``end(ctx)``: dirty-table truncation; the tracking triggers
                 fire in the body, so the body is compared with truncate_all's (same inserts + commit,
                 no triggers): ``trigger_body_extra_ms``
- truncate_all:  the naive peer: ``TRUNCATE t0, ..., t49 RESTART IDENTITY CASCADE`` after each test, on a
                 plain database of the same server
- clone:         ``begin(name, "clone")`` / ``end(ctx)``: CREATE DATABASE ... TEMPLATE ... STRATEGY FILE_COPY
- peer:          pytest-postgresql's per-test ``postgresql`` fixture, step by step as the fixture does it:
                 ``DatabaseJanitor(template_dbname=...).init()``, a new TCP connection, then close and
                 ``janitor.drop()``, against a template database holding the same schema on the same server
                 (so the data location and server settings are the same for both)

Overhead = setup + teardown, the test body excluded. Leak checks are on (testbed's default).

Part 2, the 200-test-suite form: real pytest runs of the same 200 tests (each inserts 4 + 3 + 3 rows into
t0-t2 of a 20-table schema and asserts it sees exactly its own rows), once with testbed's ``db`` fixture
and once with pytest-postgresql's ``postgresql`` fixture (``--postgresql-load`` into its template, same
PostgreSQL 15 binaries, ``--basetemp`` on /dev/shm so both keep their data on tmpfs). Per-test overhead =
setup + teardown durations from ``pytest_runtest_logreport``, median over tests 2..N (test 1 starts the
server). As root, the peer's pytest runs as the ``postgres`` OS user via ``setpriv`` with the system
``python3`` and the venv's site-packages on PYTHONPATH (pg_ctl refuses root; the venv's interpreter may
live in a private folder).

Run:  .venv/bin/python bench/isolation.py [--quick]
The last line is ``RESULT rollback_ms=... truncate_dirty_ms=... truncate_all_ms=... clone_ms=... peer_ms=...
ratio=... dirty_vs_all=... clone_vs_peer=... ...`` (medians of per-test overhead, ms; ratio = rollback /
peer). Timings are printed, never asserted. Every server started here is stopped here.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import pwd
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

import startup  # noqa: E402  (the peer's packages, shared with bench/startup.py)

from testbed.errors import LeakError
from testbed.provision import RunningPostgres, postgres

PG_BIN = "/usr/lib/postgresql/15/bin"
PEER_USER = "postgres"
SYSTEM_PYTHON = "/usr/bin/python3"
SEED = 20261122
TABLES = 50
SUITE_TABLES = 20
PLAIN_DB = "bench_plain"  # truncate-all runs here: no testbed triggers, like a hand-written fixture
PEER_TEMPLATE = "bench_peer_template"
SUITE_TIMEOUT_S = 300


def schema_sql(tables: int) -> str:
    """``tables`` tables with FK chains t0 <- t1 <- t2 and t3 <- t4 <- ... (t0, t3 reference themselves)."""
    out = []
    for i in range(tables):
        parent = i if i in (0, 3) else i - 1
        out.append(
            f"CREATE TABLE t{i} (id bigserial PRIMARY KEY, parent_id bigint REFERENCES t{parent}(id), "
            f"name text NOT NULL, created_at timestamptz);\n"
            f"CREATE INDEX t{i}_name ON t{i} (name);\n"
        )
    return "".join(out)


def run_test_body(conn: psycopg.Connection[Any], commit: bool) -> None:
    """The test: 4 rows into t0, 3 into t1 referencing them, 3 into t2 (10 round trips)."""
    parents = [conn.execute("INSERT INTO t0 (name, created_at) VALUES ('p', now()) RETURNING id").fetchone()[0]
               for _ in range(4)]
    children = [conn.execute("INSERT INTO t1 (parent_id, name) VALUES (%s, 'c') RETURNING id",
                             (parents[i],)).fetchone()[0] for i in range(3)]
    for child in children:
        conn.execute("INSERT INTO t2 (parent_id, name) VALUES (%s, 'g') RETURNING id", (child,))
    if commit:
        conn.commit()


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass
class Timings:
    """Setup, body and teardown times (ms) of one variant, one entry per test."""

    setup: list[float] = field(default_factory=list)
    body: list[float] = field(default_factory=list)
    teardown: list[float] = field(default_factory=list)

    @property
    def overhead(self) -> list[float]:
        return [s + t for s, t in zip(self.setup, self.teardown)]


class SameServerVariants:
    """The five per-test variants against one testbed server."""

    def __init__(self, running: RunningPostgres) -> None:
        self.running = running
        self.db = running.database
        self.endpoint = running.endpoint
        admin = self.db.admin
        for name in (PLAIN_DB, PEER_TEMPLATE):
            admin.execute(f"DROP DATABASE IF EXISTS {name}")
            admin.execute(f"CREATE DATABASE {name}")
            with self.endpoint.connect(name, autocommit=True) as conn:
                conn.execute(schema_sql(TABLES).encode())
        self.plain = self.endpoint.connect(PLAIN_DB)
        self.truncate_all_sql = "TRUNCATE " + ", ".join(f"t{i}" for i in range(TABLES)) + " RESTART IDENTITY CASCADE"
        self.peer_counter = 0
        self.clone_false_leaks = 0

    def close(self) -> None:
        self.plain.close()
        for name in (PLAIN_DB, PEER_TEMPLATE):
            self.db.admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    # Each run_* returns (setup_ms, body_ms, teardown_ms) and leaves t0-t2 as it found them.
    def run_testbed(self, strategy: str, name: str) -> tuple[float, float, float]:
        t0 = time.perf_counter()
        ctx = self.db.begin(name, strategy, leak_check=True)
        t1 = time.perf_counter()
        run_test_body(ctx.connection, commit=strategy != "rollback")
        t2 = time.perf_counter()
        try:
            self.db.end(ctx)
        except LeakError:
            # The clone's leak probe can still see the backend of the test's own connection, closed a
            # moment ago (backends exit asynchronously): a false positive. end() has dropped the clone
            # before raising, so the timing is complete; count it and report it.
            if strategy != "clone":
                raise
            self.clone_false_leaks += 1
        t3 = time.perf_counter()
        return (t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000

    def run_truncate_all(self, name: str) -> tuple[float, float, float]:
        t1 = time.perf_counter()
        run_test_body(self.plain, commit=True)
        t2 = time.perf_counter()
        self.plain.execute(self.truncate_all_sql)
        self.plain.commit()
        t3 = time.perf_counter()
        return 0.0, (t2 - t1) * 1000, (t3 - t2) * 1000

    def run_peer(self, name: str) -> tuple[float, float, float]:
        from pytest_postgresql.janitor import DatabaseJanitor

        self.peer_counter += 1
        dbname = f"bench_peer_{self.peer_counter}"
        ep = self.endpoint
        t0 = time.perf_counter()
        # What pytest-postgresql's `postgresql` fixture does around a test (factories/client.py).
        janitor = DatabaseJanitor(user="postgres", host=ep.host, port=ep.port, dbname=dbname,
                                  template_dbname=PEER_TEMPLATE, password=ep.password)
        janitor.init()
        conn = psycopg.connect(dbname=dbname, user="postgres", password=ep.password, host=ep.host, port=ep.port)
        t1 = time.perf_counter()
        run_test_body(conn, commit=True)
        t2 = time.perf_counter()
        conn.close()
        janitor.drop()
        t3 = time.perf_counter()
        return (t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000

    def variants(self, with_peer: bool) -> dict[str, Callable[[str], tuple[float, float, float]]]:
        out: dict[str, Callable[[str], tuple[float, float, float]]] = {
            "rollback": lambda n: self.run_testbed("rollback", n),
            "truncate": lambda n: self.run_testbed("truncate", n),
            "truncate_all": self.run_truncate_all,
            "clone": lambda n: self.run_testbed("clone", n),
        }
        if with_peer:
            out["peer"] = self.run_peer
        return out

    def rows_left(self, variant: str) -> int:
        """Rows in t0-t2 after a test: 0 when the variant isolated it."""
        if variant == "truncate_all":
            conn = self.plain
        elif variant == "peer":
            return 0  # its database is gone
        else:
            conn = self.db.conn
        row = conn.execute("SELECT (SELECT count(*) FROM t0) + (SELECT count(*) FROM t1) + "
                           "(SELECT count(*) FROM t2)").fetchone()
        conn.rollback()
        return int(row[0]) if row else -1


def run_same_server(reps: int, warmup: int, with_peer: bool, root: Path) -> tuple[dict[str, Timings], int]:
    (root / "migrations").mkdir()
    (root / "migrations" / "001_schema.sql").write_text(schema_sql(TABLES))
    results: dict[str, Timings] = {}
    with postgres(migrations="migrations", root=root, binary=PG_BIN) as running:
        bench = SameServerVariants(running)
        try:
            variants = bench.variants(with_peer)
            results = {name: Timings() for name in variants}
            for i in range(warmup):
                for name, run in variants.items():
                    run(f"warmup_{name}_{i}")
                    left = bench.rows_left(name)
                    if left:
                        raise RuntimeError(f"{name} left {left} rows in t0-t2: the benchmark is broken")
            # Clone tests back to back (nothing interleaved): the background preparation of the next clone
            # has only the previous test's ~2 ms body to overlap with, so this is clone's worst case.
            back_to_back = Timings()
            for i in range(max(10, reps // 5)):
                setup, body, teardown = bench.run_testbed("clone", f"b2b_{i}")
                back_to_back.setup.append(setup)
                back_to_back.body.append(body)
                back_to_back.teardown.append(teardown)
            rng = random.Random(SEED)
            order = list(variants)
            for i in range(reps):
                rng.shuffle(order)
                for name in order:
                    setup, body, teardown = variants[name](f"test_{name}_{i}")
                    results[name].setup.append(setup)
                    results[name].body.append(body)
                    results[name].teardown.append(teardown)
            results["clone_back_to_back"] = back_to_back
        finally:
            bench.close()
    return results, bench.clone_false_leaks


def run_peer_on_disk(reps: int, root: Path) -> list[float]:
    """pytest-postgresql's per-test database where it keeps it by default: a data dir on disk.

    Same binaries, schema and janitor calls as part 1's peer; only the server's data folder differs
    (pytest's basetemp is on the disk here). Fewer repetitions: each costs hundreds of ms.
    """
    (root / "migrations").mkdir(parents=True)
    (root / "migrations" / "001_schema.sql").write_text(schema_sql(TABLES))
    overheads: list[float] = []
    with postgres(migrations="migrations", root=root, binary=PG_BIN, data_dir="disk") as running:
        bench = SameServerVariants(running)
        try:
            bench.run_peer("warmup")
            for i in range(reps):
                setup, _body, teardown = bench.run_peer(f"disk_{i}")
                overheads.append(setup + teardown)
        finally:
            bench.close()
    return overheads


# -- part 2: real pytest suites ---------------------------------------------------------------------

SUITE_CONFTEST = """
import json, os


DURATIONS = []


def pytest_runtest_logreport(report):
    if report.when in ("setup", "call", "teardown"):
        DURATIONS.append((report.nodeid, report.when, report.duration * 1000, report.outcome))


def pytest_sessionfinish(session, exitstatus):
    with open(os.environ["BENCH_OUT"], "w") as out:
        json.dump(DURATIONS, out)
"""

SUITE_TEST = """
import pytest


@pytest.mark.parametrize("n", range({tests}))
def test_order(n, {fixture}):
    conn = {fixture}
    parents = [conn.execute("INSERT INTO t0 (name) VALUES (%s) RETURNING id", (f"p{{n}}",)).fetchone()[0]
               for _ in range(4)]
    children = [conn.execute("INSERT INTO t1 (parent_id, name) VALUES (%s, 'c') RETURNING id",
                             (parents[i],)).fetchone()[0] for i in range(3)]
    for child in children:
        conn.execute("INSERT INTO t2 (parent_id, name) VALUES (%s, 'g')", (child,))
    # Broken isolation fails here: rows of earlier tests would be visible.
    assert conn.execute("SELECT count(*) FROM t0").fetchone() == (4,)
    assert conn.execute("SELECT count(*) FROM t2").fetchone() == (3,)
"""

TESTBED_PYPROJECT = f"""
[tool.testbed]
services = ["postgres"]

[tool.testbed.postgres]
binary = "{PG_BIN}"
migrations = "migrations"
"""


def stop_leftover_servers(*folders: Path) -> None:
    """Fast-stop any PostgreSQL still running from these folders (a peer run killed by its timeout)."""
    for folder in folders:
        for pidfile in folder.rglob("postmaster.pid"):
            try:
                pid = int(pidfile.read_text().split()[0])
                os.kill(pid, signal.SIGINT)  # SIGINT = fast shutdown
            except (OSError, ValueError, IndexError):
                continue
            deadline = time.monotonic() + 10
            while pidfile.exists() and time.monotonic() < deadline:
                time.sleep(0.05)


def peer_problem() -> str | None:
    """Why pytest-postgresql cannot run here, or None."""
    try:
        import pytest_postgresql  # noqa: F401
    except ImportError:
        return "pytest-postgresql is not installed (pip install -e '.[bench]')"
    if not os.path.isfile(f"{PG_BIN}/pg_ctl"):
        return f"no pg_ctl at {PG_BIN}"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(PEER_USER)
        except KeyError:
            return f"running as root and there is no {PEER_USER!r} user to run pg_ctl as"
        if not shutil.which("setpriv"):
            return "running as root and setpriv (util-linux) is missing"
        if not os.access(SYSTEM_PYTHON, os.X_OK):
            return f"running as root and {SYSTEM_PYTHON} is missing"
    return None


def write_suites(root: Path, tests: int) -> None:
    tb = root / "testbed_suite"
    (tb / "migrations").mkdir(parents=True)
    (tb / "migrations" / "001_schema.sql").write_text(schema_sql(SUITE_TABLES))
    (tb / "pyproject.toml").write_text(TESTBED_PYPROJECT)
    (tb / "conftest.py").write_text(SUITE_CONFTEST)
    (tb / "test_orders.py").write_text(SUITE_TEST.format(tests=tests, fixture="db"))
    peer = root / "peer_suite"
    peer.mkdir()
    (peer / "schema.sql").write_text(schema_sql(SUITE_TABLES))
    (peer / "pytest.ini").write_text("[pytest]\n")
    (peer / "conftest.py").write_text(SUITE_CONFTEST)
    (peer / "test_orders.py").write_text(SUITE_TEST.format(tests=tests, fixture="postgresql"))
    for p in [root, *root.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    (root / "out").mkdir(mode=0o777)
    (root / "out").chmod(0o777)


def run_suite(kind: str, root: Path, shm: Path, cache: Path, rep: str) -> dict[str, float]:
    """One pytest run; returns the per-test medians (tests 2..N) and the whole process's wall time."""
    out_file = root / "out" / f"{kind}-{rep}.json"
    env = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "BENCH_OUT": str(out_file)}
    pytest_args = ["-m", "pytest", "-q", "-p", "no:cacheprovider"]
    if kind == "testbed":
        cwd = root / "testbed_suite"
        env["TESTBED_CACHE_DIR"] = str(cache)
        argv = [sys.executable, *pytest_args, "-p", "testbed.plugin", "--basetemp", str(shm / f"tb-{rep}")]
        env = {**os.environ, **env}
    else:
        cwd = root / "peer_suite"
        pytest_args += ["-p", "pytest_postgresql.plugin", f"--postgresql-exec={PG_BIN}/pg_ctl",
                        "--postgresql-load=schema.sql", "--basetemp", str(shm / f"peer-{rep}")]
        env["PYTHONPATH"] = startup.peer_packages()  # the venv's packages (or a readable copy), system python
        if os.geteuid() == 0:
            argv = ["setpriv", f"--reuid={PEER_USER}", f"--regid={PEER_USER}", "--init-groups", "--reset-env",
                    "--", "env", *(f"{k}={v}" for k, v in env.items()), SYSTEM_PYTHON, *pytest_args]
            env = dict(os.environ)  # setpriv --reset-env clears it for the child anyway
        else:
            argv = [sys.executable, *pytest_args]
            env = {**os.environ, **env}
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=SUITE_TIMEOUT_S)
    wall_ms = (time.perf_counter() - t0) * 1000
    if proc.returncode != 0 or not out_file.exists():
        raise RuntimeError(
            f"{kind} suite failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
        )
    per_test: dict[str, dict[str, float]] = {}
    for nodeid, when, ms, outcome in json.loads(out_file.read_text()):
        if outcome != "passed":
            raise RuntimeError(f"{kind}: {nodeid} {when} {outcome}")
        per_test.setdefault(nodeid, {})[when] = ms
    tests = list(per_test.values())
    rest = tests[1:]  # test 1's setup starts the server
    return {
        "overhead_ms": statistics.median(t["setup"] + t["teardown"] for t in rest),
        "setup_ms": statistics.median(t["setup"] for t in rest),
        "teardown_ms": statistics.median(t["teardown"] for t in rest),
        "body_ms": statistics.median(t["call"] for t in rest),
        "first_setup_ms": tests[0]["setup"],
        "wall_ms": wall_ms,
    }


def run_suites(runs: int, tests: int, with_peer: bool, root: Path, shm: Path) -> dict[str, list[dict[str, float]]]:
    write_suites(root, tests)
    kinds = ["testbed", "peer"] if with_peer else ["testbed"]
    results: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    cache = root / "cache"
    for kind in kinds:  # warm-up: builds testbed's cluster cache, fills the page cache
        run_suite(kind, root, shm, cache, "warmup")
    rng = random.Random(SEED)
    for rep in range(runs):
        rng.shuffle(kinds)
        for kind in kinds:
            results[kind].append(run_suite(kind, root, shm, cache, str(rep)))
    return results


@contextlib.contextmanager
def scratch() -> Iterator[tuple[Path, Path]]:
    """A disk folder and a tmpfs folder, readable by the peer's user, removed at the end."""
    root = Path(tempfile.mkdtemp(prefix="testbed-bench-isolation-"))
    shm = Path(tempfile.mkdtemp(prefix="testbed-bench-isolation-", dir="/dev/shm"))
    root.chmod(0o755)
    shm.chmod(0o777)  # the peer's user creates its basetemp here
    try:
        yield root, shm
    finally:
        stop_leftover_servers(root, shm)
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(shm, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and tests (under 60 s)")
    args = parser.parse_args()
    reps, warmup = (30, 3) if args.quick else (200, 10)
    suite_runs, suite_tests = (1, 30) if args.quick else (3, 200)

    problem = peer_problem()
    if problem:
        print(f"peer skipped: {problem}")
    with scratch() as (root, shm):
        os.environ["TESTBED_CACHE_DIR"] = str(root / "cache")  # a private cache, warmed by the warm-up
        (root / "part1").mkdir()
        p1, clone_false_leaks = run_same_server(reps, warmup, problem is None, root / "part1")
        disk = run_peer_on_disk(8 if args.quick else 30, root / "part3") if problem is None else []
        p2: dict[str, list[dict[str, float]]] = {}
        if problem is None:
            try:
                p2 = run_suites(suite_runs, suite_tests, True, root / "part2", shm)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                problem = f"pytest-postgresql suite failed: {str(exc).splitlines()[0]}"
                print(problem)
        if not p2:
            p2 = run_suites(suite_runs, suite_tests, False, root / "part2-testbed-only", shm)

    med = {name: statistics.median(t.overhead) for name, t in p1.items()}
    print(f"\nPart 1: per-test overhead on a {TABLES}-table schema, one server ({reps} interleaved reps per "
          f"variant after {warmup} warm-up rounds; ms)")
    print(f"{'variant':<14} {'setup':>8} {'teardown':>9} {'overhead':>9} {'p90':>8} {'body':>8} {'body p90':>9}")
    for name, t in p1.items():
        print(f"{name:<14} {statistics.median(t.setup):>8.2f} {statistics.median(t.teardown):>9.2f} "
              f"{med[name]:>9.2f} {percentile(t.overhead, 0.9):>8.2f} {statistics.median(t.body):>8.2f} "
              f"{percentile(t.body, 0.9):>9.2f}")
    # Same work (10 inserts + COMMIT) with and without testbed's dirty-tracking triggers. Rollback's body
    # fires the triggers too (they are in the template), so it cannot show their cost.
    body_extra = statistics.median(p1["truncate"].body) - statistics.median(p1["truncate_all"].body)
    print(f"dirty-tracking trigger cost in the body: truncate's body - truncate_all's body = {body_extra:.2f} ms "
          f"(rollback's body, triggers fired but no commit: {statistics.median(p1['rollback'].body):.2f} ms)")
    if clone_false_leaks:
        print(f"clone: {clone_false_leaks} test(s) got a LeakError naming the test's own, already closed "
              "connection (its backend had not exited yet); timed all the same")

    print(f"\nPart 2: {suite_tests}-test suite ({SUITE_TABLES} tables), per-test overhead from pytest's "
          f"setup + teardown, median over tests 2..N ({suite_runs} interleaved run(s) per suite; ms)")
    print(f"{'suite':<10} {'setup':>8} {'teardown':>9} {'overhead':>9} {'body':>8} {'1st setup':>10} {'wall s':>8}")
    suite_med: dict[str, float] = {}
    for kind, runs in p2.items():
        suite_med[kind] = statistics.median(r["overhead_ms"] for r in runs)

        def m(key: str, runs: list[dict[str, float]] = runs) -> float:
            return statistics.median(r[key] for r in runs)

        print(f"{kind:<10} {m('setup_ms'):>8.2f} {m('teardown_ms'):>9.2f} {suite_med[kind]:>9.2f} "
              f"{m('body_ms'):>8.2f} {m('first_setup_ms'):>10.0f} {m('wall_ms') / 1000:>8.2f}")

    nan = math.nan
    peer_disk = statistics.median(disk) if disk else nan
    if disk:
        print(f"\nPart 3: pytest-postgresql's per-test database with its data on disk (its default location), "
              f"{len(disk)} reps: median {peer_disk:.1f} ms, p90 {percentile(disk, 0.9):.1f} ms")
    peer = med.get("peer", nan)
    result = {
        "rollback_ms": med["rollback"],
        "truncate_dirty_ms": med["truncate"],
        "truncate_all_ms": med["truncate_all"],
        "clone_ms": med["clone"],
        "clone_back_to_back_ms": med["clone_back_to_back"],
        "peer_ms": peer,
        "ratio": med["rollback"] / peer,
        "dirty_vs_all": med["truncate"] / med["truncate_all"],
        "clone_vs_peer": med["clone"] / peer,
        "trigger_body_extra_ms": body_extra,
        "suite_testbed_ms": suite_med.get("testbed", nan),
        "suite_peer_ms": suite_med.get("peer", nan),
        "suite_ratio": suite_med.get("testbed", nan) / suite_med.get("peer", nan),
        "peer_disk_ms": peer_disk,
        "ratio_disk": med["rollback"] / peer_disk,
        "clone_vs_peer_disk": med["clone"] / peer_disk,
    }
    print("\nBars: rollback <= 1/100 of peer and < 1 ms; dirty truncate <= 1/5 of truncate-all and < 5 ms; "
          "clone < 30 ms and <= 1/10 of peer (peer = pytest-postgresql's per-test fixture; `peer` runs on "
          "testbed's tmpfs server, `peer_disk` where the plugin keeps its data by default)")
    if problem:
        print(f"peer not measured: {problem}")
    print("RESULT " + " ".join(f"{k}={v:.4g}" if "ratio" in k or "_vs_" in k else f"{k}={v:.3f}"
                               for k, v in result.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
