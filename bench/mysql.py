"""Session start-to-ready of MariaDB/MySQL: testbed vs pytest-mysql, side by side.

Each repetition starts a server the way each tool's session fixture does, in a fresh Python process (no
warm caches inside the interpreter), until a first query succeeds, then stops it:

- testbed: ``testbed.provision_mysql.start_mysql`` with a migrations folder, as a usual session does it:
  the migrated data folder comes from the cache (it is built once, before timing); plus, reported
  separately, a cold start (empty cache: install + migrations + cache publish).
- pytest-mysql: its ``mysql_proc`` executor (``MySQLExecutor``: ``mariadb-install-db`` + ``mysqld_safe``,
  as the fixture runs it every session) in a fresh folder under the system temp dir, then the same
  migrations applied with PyMySQL (its ``mysql`` fixture would create the database per test on top).

Variants are interleaved per repetition in a shuffled order (fixed seed) after an untimed warm-up.
Run: ``.venv/bin/python bench/mysql.py [--quick]``. Last line: ``RESULT ... mysql_ratio=<testbed/peer>``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = ROOT / "tests" / "integration" / "mysql" / "migrations"

TESTBED = r"""
import json, sys, time
from testbed.config import ServiceSettings
from testbed.provision_mysql import start_mysql
t0 = time.perf_counter()  # imports excluded: a pytest session has loaded the plugin already
server = start_mysql(ServiceSettings(engine="mysql", migrations=sys.argv[1]))
with server.connect("testbed_template") as conn, conn.cursor() as cur:
    cur.execute("SELECT COUNT(*) FROM plans")
    assert cur.fetchone()[0] == 2
t1 = time.perf_counter()
server.stop()
t2 = time.perf_counter()
print(json.dumps({"start_ms": (t1 - t0) * 1000, "stop_ms": (t2 - t1) * 1000, "cache_hit": server.cache_hit}))
"""

PEER = r"""
import json, shutil, socket, sys, tempfile, time
from pathlib import Path
import pymysql
from pytest_mysql.executor import MySQLExecutor
from testbed.schema.mysql_migrations import apply_sql_file
t0 = time.perf_counter()  # imports excluded, as for testbed
with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
base = Path(tempfile.mkdtemp(prefix="pytest-mysql-bench-"))
executor = MySQLExecutor(
    mysqld_safe=Path(shutil.which("mysqld_safe") or "mysqld_safe"), mysqld=Path("/usr/sbin/mariadbd"),
    admin_exec=shutil.which("mariadb-admin") or "mysqladmin", logfile_path=str(base / "mysql-server.log"),
    params="", base_directory=base, user="root", host="localhost", port=port,
    install_db=shutil.which("mariadb-install-db") or "mysql_install_db",
)
executor.start()
conn = pymysql.connect(unix_socket=executor.unixsocket, user="root", autocommit=True)
with conn.cursor() as cur:
    cur.execute("CREATE DATABASE tmpl")
    cur.execute("USE tmpl")
    for f in sorted(Path(sys.argv[1]).glob("*.sql")):
        apply_sql_file(conn, f)
    cur.execute("SELECT COUNT(*) FROM plans")
    assert cur.fetchone()[0] == 2
conn.close()
t1 = time.perf_counter()
executor.stop()
t2 = time.perf_counter()
shutil.rmtree(base, ignore_errors=True)
print(json.dumps({"start_ms": (t1 - t0) * 1000, "stop_ms": (t2 - t1) * 1000}))
"""


def hide_system_config(argv: list[str], empty: Path) -> list[str]:
    """Run ``argv`` where /etc/mysql looks empty (a private mount namespace; root only).

    pytest-mysql's install and mysqld_safe read the system option files, and this machine's (for its own
    MariaDB) sets user=mysql and a log file of the system server. Hiding them gives the peer the clean
    machine it expects and leaves the system server's files alone.
    """
    if os.geteuid() != 0 or not Path("/etc/mysql").is_dir() or shutil.which("unshare") is None:
        return argv
    return ["unshare", "--mount", "sh", "-c", f'mount --bind {empty} /etc/mysql && exec "$@"', "sh", *argv]


def run(code: str, env: dict[str, str], wrap: Path | None = None) -> dict[str, float]:
    argv = [sys.executable, "-c", code, str(MIGRATIONS)]
    if wrap is not None:
        argv = hide_system_config(argv, wrap)
    out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    if out.returncode != 0:
        raise SystemExit(f"benchmark step failed:\n{out.stdout}\n{out.stderr}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


PER_TEST = r"""
import json, statistics, sys, time
from testbed.config import ServiceSettings
from testbed.services import mysql
out = {}
with mysql.running(ServiceSettings(engine="mysql", migrations=sys.argv[1])) as m:
    worker = m.database
    for strategy in ("rollback", "truncate", "clone") * 2:  # twice: the first round warms up
        overhead = []
        for _ in range(int(sys.argv[2])):
            t0 = time.perf_counter()
            ctx = worker.begin("bench", strategy)
            t1 = time.perf_counter()
            with ctx.connection.cursor() as cur:  # a typical test body: 1 + 1 + 1 FK-linked rows
                cur.execute("INSERT INTO customers (name) VALUES ('bench')")
                cur.execute("INSERT INTO orders (customer_id) VALUES (LAST_INSERT_ID())")
                cur.execute("DELETE FROM plans WHERE code = 'free'")
            ctx.connection.commit()
            t2 = time.perf_counter()
            worker.end(ctx)
            overhead.append((t1 - t0 + time.perf_counter() - t2) * 1000)
        out[strategy] = statistics.median(overhead)
print(json.dumps(out))
"""


def per_test_overheads(env: dict[str, str], tests: int) -> dict[str, float]:
    argv = [sys.executable, "-c", PER_TEST, str(MIGRATIONS), str(tests)]
    out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    if out.returncode != 0:
        raise SystemExit(f"per-test benchmark failed:\n{out.stdout}\n{out.stderr}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (under 60 s)")
    parser.add_argument("--reps", type=int, default=None)
    args = parser.parse_args()
    reps = args.reps or (3 if args.quick else 7)
    try:
        import pytest_mysql  # noqa: F401
        peer_available = shutil.which("mysqld_safe") is not None
    except ImportError:
        peer_available = False
    cache = Path(tempfile.mkdtemp(prefix="testbed-bench-cache-"))
    warm_env = {**os.environ, "TESTBED_CACHE_DIR": str(cache / "warm")}
    empty = cache / "empty-etc-mysql"
    empty.mkdir()
    rng = random.Random(5)
    results: dict[str, list[float]] = {"testbed": [], "testbed_cold": [], "peer": []}
    stops: dict[str, list[float]] = {"testbed": [], "testbed_cold": [], "peer": []}
    try:
        run(TESTBED, warm_env)  # warm-up: builds the cached data folders
        if peer_available:
            run(PEER, dict(os.environ), empty)
        for rep in range(reps):
            variants = ["testbed", "testbed_cold"] + (["peer"] if peer_available else [])
            rng.shuffle(variants)
            for v in variants:
                if v == "testbed":
                    r = run(TESTBED, warm_env)
                    assert r["cache_hit"], "warm testbed start did not use the cache"
                elif v == "testbed_cold":
                    r = run(TESTBED, {**os.environ, "TESTBED_CACHE_DIR": str(cache / f"cold-{rep}")})
                else:
                    r = run(PEER, dict(os.environ), empty)
                results[v].append(r["start_ms"])
                stops[v].append(r["stop_ms"])
        overheads = per_test_overheads(warm_env, 20 if args.quick else 100)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    print(f"MariaDB session start-to-ready (first query on migrated schema), {reps} reps, medians:")
    print(f"{'variant':<44} {'start ms':>9} {'stop ms':>8}")
    labels = {"testbed": "testbed (cached migrated data folder)", "testbed_cold": "testbed cold (empty cache)",
              "peer": "pytest-mysql MySQLExecutor + migrations"}
    med = {k: statistics.median(v) for k, v in results.items() if v}
    for k, label in labels.items():
        if k in med:
            print(f"{label:<44} {med[k]:>9.0f} {statistics.median(stops[k]):>8.0f}")
    print("testbed per-test overhead (setup + teardown, test body excluded), medians:")
    for strategy, ms in overheads.items():
        print(f"  {strategy:<10} {ms:>7.2f} ms")
    fields = [f"testbed_start_ms={med['testbed']:.0f}", f"testbed_cold_start_ms={med['testbed_cold']:.0f}"]
    fields += [f"mysql_{k}_ms={v:.2f}" for k, v in overheads.items()]
    if "peer" in med:
        fields += [f"peer_start_ms={med['peer']:.0f}", f"mysql_ratio={med['testbed'] / med['peer']:.3f}",
                   f"mysql_cold_ratio={med['testbed_cold'] / med['peer']:.3f}"]
    else:
        print("pytest-mysql (or mysqld_safe) not installed: no peer figure. pip install 'pytest-testbed[bench]'.")
        fields.append("mysql_ratio=nan")
    print("RESULT " + " ".join(fields))


if __name__ == "__main__":
    main()
