"""The rerun loop: what re-running one test costs, whole pytest process, testbed vs pytest-postgresql.

    .venv/bin/python bench/rerun.py [--quick]

A one-test project is re-run, each variant interleaved with the others (fixed-seed shuffle per round) after
an untimed warm-up of each; medians of the whole process's wall time:

  bare            plain pytest, a unit test (no testbed, no other plugin)
  driver          plain pytest, the unit test in a module that imports psycopg: what the database driver alone
                  adds to a pytest process (import and interpreter exit), paid by any database test on any tool
  unit            the same unit test with testbed's two plugins loaded (what a unit-only run pays)
  db_reuse        a database test on testbed with reuse on: the run adopts the server kept by the warm-up
  db_fresh        the same with reuse off: the run starts (and stops) its own server
  peer_bare       plain pytest as the peer runs it (the peer's interpreter and user; see below)
  peer            the same database test on pytest-postgresql (its ``postgresql`` fixture)

Both database tests run one query on a table of the same 20-table schema (testbed: a migrations folder;
pytest-postgresql: ``--postgresql-load``), on the same PostgreSQL 15 binaries. pg_ctl refuses root, so as
root the peer's runs (and ``peer_bare``, its baseline) use the system python as the ``postgres`` user with
the venv's packages on PYTHONPATH; testbed drops to an unprivileged user by itself. Plugin autoloading is
off in every variant (``-p`` names each plugin), so other installed plugins cost nothing to either side.
With autoloading off, each ``-p`` also makes pytest look through every installed distribution's entry
points (about 2 ms apiece here: testbed's two plugins pay it twice, pytest-postgresql once); a user's
pytest, autoloading, looks through them once whatever is installed.
Child processes write bytecode (PYTHONDONTWRITEBYTECODE is removed from their environment), as on a
developer's machine.

It also starts the standalone stub server (``python -m testbed.stubs``) and the WireMock jar, interleaved,
and reports testbed's start-to-first-response as a fraction of WireMock's.

Last line: ``RESULT added_reuse_ms=... added_fresh_ms=... added_peer_ms=... ratio=... unit_added_ms=...
stub_start_ratio=... driver_ms=... testbed_own_reuse_ms=...`` (ratio = testbed's added time with reuse /
pytest-postgresql's added time; driver_ms = what importing psycopg adds to plain pytest, included in both
sides' added time; testbed_own_reuse_ms = added_reuse_ms - driver_ms). Timings
are printed, never asserted. Kept servers are stopped at the end (``testbed down`` on the bench's own
records folder).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import startup  # noqa: E402  (the peer's set-up, shared with bench/startup.py)
import stubs  # noqa: E402

SEED = 20261130
RUN_TIMEOUT_S = 180

UNIT_TEST = """
def test_total():
    assert sum([1, 2, 3]) == 6
"""

DRIVER_TEST = "import psycopg  # noqa: F401\n" + UNIT_TEST

TESTBED_TEST = f"""
def test_count(db):
    assert db.execute("SELECT count(*) FROM t{startup.TABLES - 1}").fetchone() == (0,)
"""

PEER_TEST = f"""
def test_count(postgresql):
    assert postgresql.execute("SELECT count(*) FROM t{startup.TABLES - 1}").fetchone() == (0,)
"""

PYPROJECT = f"""
[tool.testbed.postgres]
binary = "{startup.PG_BIN}"
migrations = "migrations"
"""

TESTBED_PLUGINS = ["-p", "testbed.plugin", "-p", "testbed.hygiene.plugin"]


class Project:
    """The one-test projects and testbed's private cache and records folders, removed at the end."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="testbed-bench-rerun-"))
        self.root.chmod(0o755)  # the peer's user must reach its project
        self.testbed = self.root / "testbed_project"
        self.peer = self.root / "peer_project"
        self.basetemp = self.root / "peer_basetemp"
        self.env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "CI")}
        self.env.update({"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "TESTBED_CACHE_DIR": str(self.root / "cache"),
                         "TESTBED_RUNS_DIR": str(self.root / "runs")})

    def write(self) -> None:
        (self.testbed / "migrations").mkdir(parents=True)
        (self.testbed / "migrations" / "001_schema.sql").write_text(startup.schema_sql(startup.TABLES))
        (self.testbed / "pyproject.toml").write_text(PYPROJECT)
        (self.testbed / "test_unit.py").write_text(UNIT_TEST)
        (self.testbed / "test_driver.py").write_text(DRIVER_TEST)
        (self.testbed / "test_db.py").write_text(TESTBED_TEST)
        self.peer.mkdir()
        (self.peer / "schema.sql").write_text(startup.schema_sql(startup.TABLES))
        (self.peer / "pytest.ini").write_text("[pytest]\n")
        (self.peer / "test_unit.py").write_text(UNIT_TEST)
        (self.peer / "test_db.py").write_text(PEER_TEST)
        self.basetemp.mkdir(mode=0o777)
        self.basetemp.chmod(0o777)
        for p in [self.peer, *self.peer.rglob("*")]:
            p.chmod(0o777 if p.is_dir() else 0o644)  # the peer writes its __pycache__ here

    def down(self) -> None:
        subprocess.run([sys.executable, "-m", "testbed.cli", "down"], env=self.env, capture_output=True,
                       timeout=60, check=False)

    def remove(self) -> None:
        self.down()
        startup.stop_leftover_servers(self.root)
        shutil.rmtree(self.root, ignore_errors=True)


def testbed_run(project: Project, test: str, plugins: list[str], reuse: bool | None = None) -> Callable[[], float]:
    def run() -> float:
        env = dict(project.env)
        if reuse is not None:
            env["TESTBED_REUSE"] = "1" if reuse else "0"
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugins, test]
        return timed(argv, project.testbed, env)

    return run


def peer_run(project: Project, test: str, plugins: list[str]) -> Callable[[], float]:
    def run() -> float:
        env = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONPATH": startup.peer_packages()}
        pytest_args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", *plugins, test]
        if plugins:
            pytest_args[-1:-1] = [f"--postgresql-exec={startup.PG_BIN}/pg_ctl", "--postgresql-load=schema.sql",
                                  "--basetemp", str(project.basetemp / f"run-{time.monotonic_ns()}")]
        if os.geteuid() == 0:
            argv = ["setpriv", f"--reuid={startup.PEER_USER}", f"--regid={startup.PEER_USER}", "--init-groups",
                    "--reset-env", "--", "env", *(f"{k}={v}" for k, v in env.items()), startup.SYSTEM_PYTHON,
                    *pytest_args]
            return timed(argv, project.peer, dict(os.environ))
        return timed([sys.executable, *pytest_args], project.peer, {**project.env, **env})

    return run


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    elapsed = (time.perf_counter() - started) * 1000
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[-6:])} failed (exit {proc.returncode}):\n"
                           f"{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return elapsed


def stub_starts(reps: int) -> tuple[float, float] | None:
    """Median start-to-first-response of the standalone stub server and of WireMock (ms), interleaved."""
    if not stubs.JAR.is_file() or not shutil.which("java"):
        print(f"stub start skipped: no WireMock jar at {stubs.JAR} (make wiremock) or no java")
        return None
    root = Path(tempfile.mkdtemp(prefix="testbed-bench-rerun-stubs-"))
    try:
        stubs.write_root(root)
        kinds = [stubs.Kind("testbed_proc", stubs.start_testbed_proc), stubs.Kind("wiremock", stubs.start_wiremock)]
        for kind in kinds:  # warm-up
            stubs.measure_start(kind, root)
            kind.starts_ms.clear()
        rng = random.Random(SEED)
        for _ in range(reps):
            rng.shuffle(kinds)
            for kind in kinds:
                stubs.measure_start(kind, root)
        by_name = {k.name: statistics.median(k.starts_ms) for k in kinds}
        return by_name["testbed_proc"], by_name["wiremock"]
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds instead of 10")
    args = parser.parse_args()
    reps = 3 if args.quick else 10

    project = Project()
    variants: dict[str, Callable[[], float]] = {
        "bare": testbed_run(project, "test_unit.py", []),
        "driver": testbed_run(project, "test_driver.py", []),
        "unit": testbed_run(project, "test_unit.py", TESTBED_PLUGINS),
        "db_reuse": testbed_run(project, "test_db.py", TESTBED_PLUGINS, reuse=True),
        "db_fresh": testbed_run(project, "test_db.py", TESTBED_PLUGINS, reuse=False),
    }
    problem = startup.peer_problem()
    if problem:
        print(f"peer skipped: {problem}")
    else:
        variants["peer_bare"] = peer_run(project, "test_unit.py", [])
        variants["peer"] = peer_run(project, "test_db.py", ["-p", "pytest_postgresql.plugin"])
    times: dict[str, list[float]] = {name: [] for name in variants}
    try:
        project.write()
        for run in variants.values():  # warm-up: caches, page cache, bytecode, the kept server
            run()
        rng = random.Random(SEED)
        for _ in range(reps):
            order = list(variants)
            rng.shuffle(order)
            for name in order:
                times[name].append(variants[name]())
    finally:
        project.remove()
    stub = stub_starts(3 if args.quick else 7)

    med = {name: statistics.median(values) for name, values in times.items()}
    print(f"\nOne-test project re-run ({reps} interleaved rounds after a warm-up; whole-process wall time, ms)")
    print(f"{'variant':<10} {'median':>8} {'min':>8} {'max':>8}")
    for name, values in times.items():
        print(f"{name:<10} {med[name]:>8.0f} {min(values):>8.0f} {max(values):>8.0f}")
    added_reuse = med["db_reuse"] - med["bare"]
    added_fresh = med["db_fresh"] - med["bare"]
    unit_added = med["unit"] - med["bare"]
    added_peer = med["peer"] - med["peer_bare"] if "peer" in med else float("nan")
    driver = med["driver"] - med["bare"]
    ratio = added_reuse / added_peer
    print(f"added over bare pytest: testbed db test {added_reuse:.0f} ms with reuse (goal <= 100), "
          f"{added_fresh:.0f} ms without; pytest-postgresql {added_peer:.0f} ms; ratio {ratio:.3f} (goal <= 0.1); "
          f"unit-only run with testbed loaded {unit_added:+.0f} ms (goal <= 20)")
    print(f"of the database test's added time, importing psycopg alone (plain pytest) is {driver:.0f} ms; "
          f"testbed's own share is {added_reuse - driver:.0f} ms with reuse")
    stub_ratio = float("nan")
    if stub is not None:
        stub_ratio = stub[0] / stub[1]
        print(f"stub server start: testbed {stub[0]:.0f} ms, WireMock {stub[1]:.0f} ms, ratio {stub_ratio:.3f} "
              "(goal <= 0.1)")
    print(f"RESULT added_reuse_ms={added_reuse:.0f} added_fresh_ms={added_fresh:.0f} added_peer_ms={added_peer:.0f} "
          f"ratio={ratio:.3f} unit_added_ms={unit_added:.0f} stub_start_ratio={stub_ratio:.3f} driver_ms={driver:.0f} "
          f"testbed_own_reuse_ms={added_reuse - driver:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
