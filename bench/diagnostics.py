"""What the per-test transcript costs: a generated mixed suite with capture on and off, and the HTML report.

    .venv/bin/python bench/diagnostics.py [--quick]

The suite (200 tests) mixes what an integration suite does: SQL through the test's connection (inserts,
selects, a join), the application's own connection through ``db_url`` (truncate isolation), HTTP calls to
the stub server, and a tenth of tests that fail (a wrong assertion after real work; the expected exit
status is 1). It runs whole, as a user would (``pytest -p no:randomly``), with capture on and with
``--testbed-no-capture``, interleaved after an untimed warm-up of each, on a kept PostgreSQL (so server
start is not part of either); medians of the whole process's wall time.

Then the same generator makes 1,000 tests, run once with ``--testbed-report``: the report's size, and the
time headless chromium takes from navigation to the report drawn (the test rows in the page), when
chromium and chromedriver are installed (``apt-get install chromium chromium-driver``).

Last line: ``RESULT on_ms=... off_ms=... ratio=... report_kib_1000=... open_ms_1000=...`` (ratio = on/off;
goals: ratio <= 1.10, report < 5 MiB, open < 2 s). Timings are printed, never asserted. The kept server is
stopped at the end (``testbed down`` on the bench's own records folder).
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
from pathlib import Path

SEED = 20261201
RUN_TIMEOUT_S = 900

PYPROJECT = """
[tool.testbed.postgres]
migrations = "migrations"
"""

SCHEMA = """
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE);
CREATE TABLE orders (id serial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers(id),
                     amount numeric(10, 2) NOT NULL, status text NOT NULL DEFAULT 'new');
"""

HEADER = '''
import httpx
import psycopg
import pytest
from testbed.stubs import get, post

HTTP = httpx.Client()  # one client per module, as an application keeps one (making one loads TLS certificates)


def _customer(db, i):
    return db.execute("INSERT INTO customers (name, email) VALUES (%s, %s) RETURNING id",
                      (f"c{i}", f"c{i}@example.com")).fetchone()[0]
'''

SQL_TEST = '''
def test_sql_{i}(db):
    cid = _customer(db, {i})
    for amount in (10, 20, 30):
        db.execute("INSERT INTO orders (customer_id, amount) VALUES (%s, %s)", (cid, amount))
    total = db.execute("SELECT sum(o.amount) FROM orders o JOIN customers c ON c.id = o.customer_id "
                       "WHERE c.id = %s", (cid,)).fetchone()[0]
    assert total == {expected}
'''

APP_TEST = '''
@pytest.mark.testbed(isolation="truncate")
def test_app_{i}(db_url):
    with psycopg.connect(db_url) as app:
        app.execute("INSERT INTO customers (name) VALUES ('app{i}')")
        app.commit()
        count = app.execute("SELECT count(*) FROM customers").fetchone()[0]
    assert count == {expected}
'''

HTTP_TEST = '''
def test_http_{i}(http_stub):
    http_stub.stub_for(post("/v1/charge").will_return(json={{"status": "approved", "id": "p{i}"}}))
    http_stub.stub_for(get("/v1/users/{i}").will_return(json={{"id": {i}, "name": "Sam"}}))
    user = HTTP.get(http_stub.url + "/v1/users/{i}").json()
    charge = HTTP.post(http_stub.url + "/v1/charge", json={{"user": user["id"], "amount": 500}})
    assert charge.json()["status"] == "{expected}"
'''


def write_suite(root: Path, tests: int) -> int:
    """A project of ``tests`` tests (half SQL, a fifth the app's own connection, the rest HTTP); returns how
    many of them fail."""
    (root / "migrations").mkdir(parents=True, exist_ok=True)
    (root / "migrations" / "001_schema.sql").write_text(SCHEMA)
    (root / "pyproject.toml").write_text(PYPROJECT)
    rng = random.Random(SEED)
    failing = 0
    per_file = 50
    for f in range(0, tests, per_file):
        parts = [HEADER]
        for i in range(f, min(f + per_file, tests)):
            fail = rng.random() < 0.1
            failing += fail
            kind = i % 10
            if kind < 5:
                parts.append(SQL_TEST.format(i=i, expected="61" if fail else "60"))
            elif kind < 7:
                parts.append(APP_TEST.format(i=i, expected="2" if fail else "1"))
            else:
                parts.append(HTTP_TEST.format(i=i, expected="declined" if fail else "approved"))
        (root / f"test_suite_{f // per_file:03d}.py").write_text("\n".join(parts))
    return failing


class Bench:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="testbed-bench-diagnostics-"))
        self.env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "CI")}
        self.env.update({"TESTBED_CACHE_DIR": str(self.root / "cache"), "TESTBED_RUNS_DIR": str(self.root / "runs"),
                         "TESTBED_REUSE": "1"})

    def run(self, project: Path, *args: str) -> float:
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", *args]
        started = time.perf_counter()
        proc = subprocess.run(argv, cwd=project, env=self.env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        elapsed = (time.perf_counter() - started) * 1000
        if proc.returncode not in (0, 1):
            raise RuntimeError(f"pytest {' '.join(args)} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n"
                               f"{proc.stderr[-2000:]}")
        return elapsed

    def remove(self) -> None:
        subprocess.run([sys.executable, "-m", "testbed.cli", "down"], env=self.env, capture_output=True, timeout=60,
                       check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def open_in_chromium(report: Path) -> float | None:
    """Milliseconds from navigation until the report's rows are drawn, in headless chromium (None without it)."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        print("report open time skipped: no chromium/chromedriver (apt-get install chromium chromium-driver)")
        return None
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service(driver), options=options)
    try:
        times = []
        for _ in range(3):
            browser.get(report.as_uri())
            rows = browser.execute_script("return document.querySelectorAll('tr.test').length")
            took = browser.execute_script(
                "const t = performance.getEntriesByType('navigation')[0]; return t.loadEventEnd - t.startTime")
            if not rows:
                raise RuntimeError("the report drew no rows")
            times.append(float(took))
        return statistics.median(times)
    finally:
        browser.quit()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="one round, 100 tests, a 1,000-test report")
    args = parser.parse_args()
    rounds, tests = (1, 100) if args.quick else (3, 200)
    bench = Bench()
    try:
        suite = bench.root / "suite"
        failing = write_suite(suite, tests)
        variants = {"on": (), "off": ("--testbed-no-capture",)}
        for extra in variants.values():  # warm-up: template cache, the kept server, bytecode
            bench.run(suite, *extra)
        times: dict[str, list[float]] = {name: [] for name in variants}
        rng = random.Random(SEED)
        for _ in range(rounds):
            order = list(variants)
            rng.shuffle(order)
            for name in order:
                times[name].append(bench.run(suite, *variants[name]))
        big = bench.root / "big"
        write_suite(big, 1000)
        report = bench.root / "report.html"
        bench.run(big, f"--testbed-report={report}")
        size_kib = report.stat().st_size / 1024
        open_ms = open_in_chromium(report)
    finally:
        bench.remove()
    med = {name: statistics.median(v) for name, v in times.items()}
    ratio = med["on"] / med["off"]
    print(f"\n{tests}-test mixed suite ({failing} failing), {rounds} interleaved round(s) after a warm-up; "
          "whole-process wall time, ms")
    for name, values in times.items():
        print(f"  capture {name:<4} median {med[name]:>8.0f}  min {min(values):>8.0f}  max {max(values):>8.0f}")
    print(f"  on/off ratio {ratio:.3f} (goal <= 1.10)")
    opened = f"{open_ms:.0f} ms" if open_ms is not None else "not measured"
    print(f"1,000-test report: {size_kib:.0f} KiB (goal < 5120), opened in headless chromium in {opened} (goal < 2000)")
    print(f"RESULT on_ms={med['on']:.0f} off_ms={med['off']:.0f} ratio={ratio:.3f} report_kib_1000={size_kib:.0f} "
          f"open_ms_1000={open_ms if open_ms is None else round(open_ms)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
