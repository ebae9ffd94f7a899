"""Session start to first query: testbed's ``db`` fixture vs pytest-postgresql's ``postgresql`` fixture.

What it measures: two real one-test pytest runs, side by side, interleaved per repetition (fixed-seed
shuffle) after an untimed warm-up run of each. Both suites load the same 20-table schema (testbed: a
migrations folder, from its warm cluster cache after the warm-up; pytest-postgresql: ``--postgresql-load``
into its template database) and use the same PostgreSQL 15 binaries. A conftest records
``time.perf_counter()`` in ``pytest_sessionstart``; the test runs its first query (``SELECT count(*)``
on a migrated table) and reports the elapsed time. So the figure covers server start, schema, per-test
database and connection, not interpreter start-up and plugin import (shown separately as "launch").

- testbed: ``.venv/bin/python -m pytest`` (as the invoking user; as root, testbed starts the server as an
  unprivileged user itself), data on tmpfs when there is one (testbed's default), cache in a private
  folder (TESTBED_CACHE_DIR) warmed by the warm-up run.
- pytest-postgresql (the peer): pg_ctl refuses root, so when this script runs as root the peer's pytest
  runs as the ``postgres`` OS user through ``setpriv``, with the system ``python3`` (the venv's interpreter
  may live in a private folder) and the venv's site-packages on PYTHONPATH. ``peer`` keeps pytest's
  default basetemp location (/tmp, disk here); ``peer_tmpfs`` puts ``--basetemp`` on /dev/shm.

Run:  .venv/bin/python bench/startup.py [--quick]
The last line is ``RESULT testbed_ms=... peer_ms=... ratio=...`` (ratio = testbed / peer, medians).
Timings are printed, never asserted. Every server is stopped by the pytest run that started it.
"""

from __future__ import annotations

import argparse
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
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

PG_BIN = "/usr/lib/postgresql/15/bin"
PEER_USER = "postgres"
SYSTEM_PYTHON = "/usr/bin/python3"
TABLES = 20
SEED = 20261122
RUN_TIMEOUT_S = 120  # one pytest run; bounds the loop even if a server hangs


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


# Shared by both suites: session start is taken here, the first query's time is written by the test.
CONFTEST = """
import json, os, time

SESSION_START = [0.0]


def pytest_sessionstart(session):
    SESSION_START[0] = time.perf_counter()


def report_first_query():
    now = time.perf_counter()
    with open(os.environ["BENCH_OUT"], "w") as out:
        json.dump({"session_ms": (now - SESSION_START[0]) * 1000,
                   "launch_ms": (time.time() - float(os.environ["BENCH_LAUNCHED"])) * 1000}, out)
"""

TESTBED_TEST = f"""
from conftest import report_first_query


def test_first_query(db):
    assert db.execute("SELECT count(*) FROM t{TABLES - 1}").fetchone() == (0,)
    report_first_query()
"""

PEER_TEST = f"""
from conftest import report_first_query


def test_first_query(postgresql):
    assert postgresql.execute("SELECT count(*) FROM t{TABLES - 1}").fetchone() == (0,)
    report_first_query()
"""

TESTBED_PYPROJECT = f"""
[tool.testbed]
services = ["postgres"]

[tool.testbed.postgres]
binary = "{PG_BIN}"
migrations = "migrations"
"""


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


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


class Workspace:
    """The suites, output files and caches of one benchmark run, in one folder removed at the end."""

    def __init__(self) -> None:
        # /tmp is on disk here; a mkdtemp folder is private, so open it up for the peer's user.
        self.root = Path(tempfile.mkdtemp(prefix="testbed-bench-startup-"))
        self.root.chmod(0o755)  # the peer's user must reach its suite
        self.shm = Path(tempfile.mkdtemp(prefix="testbed-bench-startup-", dir="/dev/shm"))
        self.shm.chmod(0o777)  # the peer's user creates its basetemp here
        self.testbed_suite = self.root / "testbed_suite"
        self.peer_suite = self.root / "peer_suite"
        self.out = self.root / "out"
        self.cache = self.root / "cache"

    def write(self) -> None:
        (self.testbed_suite / "migrations").mkdir(parents=True)
        (self.testbed_suite / "migrations" / "001_schema.sql").write_text(schema_sql(TABLES))
        (self.testbed_suite / "pyproject.toml").write_text(TESTBED_PYPROJECT)
        (self.testbed_suite / "conftest.py").write_text(CONFTEST)
        (self.testbed_suite / "test_first.py").write_text(TESTBED_TEST)
        self.peer_suite.mkdir()
        (self.peer_suite / "schema.sql").write_text(schema_sql(TABLES))
        (self.peer_suite / "conftest.py").write_text(CONFTEST)
        (self.peer_suite / "test_first.py").write_text(PEER_TEST)
        (self.peer_suite / "pytest.ini").write_text("[pytest]\n")
        self.out.mkdir(mode=0o777)
        self.out.chmod(0o777)  # both users write results here
        self.cache.mkdir()
        for path in (self.testbed_suite, self.peer_suite):
            for p in [path, *path.rglob("*")]:
                p.chmod(0o755 if p.is_dir() else 0o644)

    def remove(self) -> None:
        stop_leftover_servers(self.root, self.shm)
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.shm, ignore_errors=True)


_PEER_COPY: list[str] = []
PEER_DISTRIBUTIONS = ("pytest-postgresql", "pytest", "psycopg-binary")


def _reachable_by_others(path: str) -> bool:
    """Whether a user who is neither owner nor in the group can read ``path`` (every folder above it open)."""
    import stat

    current = Path(path)
    try:
        if not os.stat(current).st_mode & stat.S_IROTH:
            return False
        for folder in [current, *current.parents]:
            if not os.stat(folder).st_mode & stat.S_IXOTH:
                return False
    except OSError:
        return False
    return True


def _requirement_closure(names: tuple[str, ...]) -> list[Any]:
    """The installed distributions ``names`` need, themselves included (extras left out)."""
    import importlib.metadata

    from packaging.requirements import Requirement

    found: dict[str, Any] = {}
    todo = list(names)
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in found:
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        found[key] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return list(found.values())


def peer_packages() -> str:
    """Where the peer's interpreter finds pytest-postgresql and what it needs (its PYTHONPATH).

    As root, the peer runs as PEER_USER with the system python: the venv's packages serve when that user can
    read them; a checkout in a private folder (``mktemp -d`` as root, as CI runs) is not readable, so just
    the peer's distributions are copied, once per bench process, to a folder it can read (removed at exit).
    """
    purelib = sysconfig.get_paths()["purelib"]
    if os.geteuid() != 0 or _reachable_by_others(purelib):
        return purelib
    if _PEER_COPY:
        return _PEER_COPY[0]
    import atexit

    target = Path(tempfile.mkdtemp(prefix="testbed-bench-peer-packages-"))
    atexit.register(shutil.rmtree, target, True)
    for dist in _requirement_closure(PEER_DISTRIBUTIONS):
        for file in dist.files or []:
            if file.parts and file.parts[0] == "..":
                continue  # scripts and data outside site-packages
            source = Path(str(dist.locate_file(file)))
            if source.is_file():
                (target / file).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / file)
    for folder, _dirs, files in os.walk(target):
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644 if not name.endswith(".so") else 0o755)
    _PEER_COPY.append(str(target))
    return str(target)


def peer_problem() -> str | None:
    """Why the peer cannot run here, or None."""
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


def run_suite(kind: str, ws: Workspace, rep: str) -> dict[str, float]:
    """One pytest run of one suite; returns its first-query timings and the whole process's wall time."""
    out_file = ws.out / f"{kind}-{rep}.json"
    launched = time.time()
    env = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "BENCH_OUT": str(out_file), "BENCH_LAUNCHED": repr(launched)}
    pytest_args = ["-m", "pytest", "-q", "-p", "no:cacheprovider"]
    if kind == "testbed":
        cwd = ws.testbed_suite
        env["TESTBED_CACHE_DIR"] = str(ws.cache)
        argv = [sys.executable, *pytest_args, "-p", "testbed.plugin", "--basetemp", str(ws.root / "tb-basetemp")]
        env = {**os.environ, **env}
    else:
        cwd = ws.peer_suite
        basetemp = (ws.shm if kind == "peer_tmpfs" else ws.out) / f"basetemp-{kind}-{rep}"
        pytest_args += ["-p", "pytest_postgresql.plugin", f"--postgresql-exec={PG_BIN}/pg_ctl",
                        "--postgresql-load=schema.sql", "--basetemp", str(basetemp)]
        env["PYTHONPATH"] = peer_packages()  # the venv's packages (or a readable copy), for the system python
        if os.geteuid() == 0:
            argv = ["setpriv", f"--reuid={PEER_USER}", f"--regid={PEER_USER}", "--init-groups", "--reset-env",
                    "--", "env", *(f"{k}={v}" for k, v in env.items()), SYSTEM_PYTHON, *pytest_args]
            env = dict(os.environ)  # setpriv --reset-env clears it for the child anyway
        else:
            argv = [sys.executable, *pytest_args]
            env = {**os.environ, **env}
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    wall_ms = (time.time() - launched) * 1000
    if proc.returncode != 0 or not out_file.exists():
        raise RuntimeError(
            f"{kind} suite failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
        )
    result: dict[str, float] = json.loads(out_file.read_text())
    result["wall_ms"] = wall_ms
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="3 repetitions (under 60 s) instead of 9")
    args = parser.parse_args()
    reps = 3 if args.quick else 9

    problem = peer_problem()
    kinds = ["testbed"] if problem else ["testbed", "peer", "peer_tmpfs"]
    if problem:
        print(f"peer skipped: {problem}")
    ws = Workspace()
    results: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    try:
        ws.write()
        # Warm-up, untimed: builds testbed's cluster cache, loads binaries and Python files into the page cache.
        for kind in list(kinds):
            try:
                run_suite(kind, ws, "warmup")
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                if kind == "testbed":
                    raise
                print(f"peer {kind} skipped: {exc}")
                kinds.remove(kind)
                problem = problem or str(exc).splitlines()[0]
        rng = random.Random(SEED)
        for rep in range(reps):
            order = list(kinds)
            rng.shuffle(order)
            for kind in order:
                results[kind].append(run_suite(kind, ws, str(rep)))
    finally:
        ws.remove()

    print(f"\nSession start to first query, one-test pytest run ({reps} interleaved reps after warm-up; ms)")
    print(f"{'variant':<12} {'median':>8} {'p90':>8} {'min':>8} {'launch median':>14} {'wall median':>12}")
    medians: dict[str, float] = {}
    for kind in kinds:
        session = [r["session_ms"] for r in results[kind]]
        medians[kind] = statistics.median(session)
        launch = statistics.median(r["launch_ms"] for r in results[kind])
        wall = statistics.median(r["wall_ms"] for r in results[kind])
        print(f"{kind:<12} {medians[kind]:>8.0f} {percentile(session, 0.9):>8.0f} {min(session):>8.0f} "
              f"{launch:>14.0f} {wall:>12.0f}")
    print("session = pytest_sessionstart -> first query done; launch = process launch -> first query;"
          " wall = whole pytest process")
    testbed = medians["testbed"]
    peer = medians.get("peer", math.nan)
    peer_tmpfs = medians.get("peer_tmpfs", math.nan)
    ratio = testbed / peer
    print(f"testbed / peer = {ratio:.3f} (bar: <= 0.2); testbed / peer_tmpfs = {testbed / peer_tmpfs:.3f}")
    print(
        f"RESULT testbed_ms={testbed:.0f} peer_ms={peer:.0f} ratio={ratio:.3f} "
        f"peer_tmpfs_ms={peer_tmpfs:.0f} ratio_tmpfs={testbed / peer_tmpfs:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
