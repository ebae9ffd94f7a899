"""Django's test databases: testbed (migrations = "django", warm template cache) vs pytest-django's own.

What it measures, side by side in one run, interleaved per repetition after an untimed warm-up of each:

- setup: the time pytest-django's ``django_db_setup`` takes (recorded by a conftest hook) for a generated
  project of 50 models and 46 migrations (32 of its own plus django.contrib's auth and contenttypes).
  testbed: a clone of the cached migrated template; pytest-django: ``--create-db``, every migration.
  Both on the same PostgreSQL binary and a server on tmpfs (the peer's server is started with testbed's
  library and reached over TCP, so only the test-database work differs). Also under ``-n 2`` (the
  slowest worker's setup).
- transactional teardown: ``@pytest.mark.django_db(transaction=True)`` tests that each write one row;
  the median teardown time per test. testbed truncates only the written table; pytest-django flushes all 52
  tables.
- async rollback: the median extra setup+teardown of an async test that uses ``async_db`` (rollback
  isolation) over one that does not, in the same run.
- the whole pytest process's wall time of the set-up runs (one test), alone and under ``-n 2``: under xdist
  a testbed worker asks the controller for the server as soon as its collection shows a test needs it, so
  the controller adopts the kept server while the workers are scheduled and the fixture finds it ready.
  The whole-process line is there for context: most of it is Python, Django and the installed plugins
  starting, on both sides.

Run:  .venv/bin/python bench/django.py [--quick]
Last line: RESULT setup_testbed_ms=... setup_peer_ms=... setup_ratio=... (and -n 2, teardown, async).
Timings are printed, never asserted.
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
import time
from pathlib import Path

MODELS = 50
OWN_MIGRATIONS = 32
SEED = 20261130
RUN_TIMEOUT_S = 600

CONFTEST = '''
import json, os, time

_T = {}

def pytest_runtest_logreport(report):
    path = os.environ.get("BENCH_OUT")
    if not path:
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(f"{path}.{worker}", "a") as out:
        out.write(json.dumps({"id": report.nodeid, "when": report.when, "ms": report.duration * 1000,
                              "setup_db_ms": _T.get("setup_db_ms")}) + "\\n")

import pytest

@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef, request):
    start = time.perf_counter()
    try:
        return (yield)
    finally:
        if fixturedef.argname == "django_db_setup":
            _T["setup_db_ms"] = (time.perf_counter() - start) * 1000
'''


def write_project(root: Path, testbed: bool) -> None:
    """A Django project: one app with MODELS models across OWN_MIGRATIONS migrations, and tests."""
    (root / "site_").mkdir(parents=True)
    (root / "site_" / "__init__.py").write_text("")
    (root / "site_" / "settings.py").write_text(
        "import os\nSECRET_KEY = 'bench'\nUSE_TZ = True\nDEFAULT_AUTO_FIELD = 'django.db.models.BigAutoField'\n"
        "INSTALLED_APPS = ['django.contrib.auth', 'django.contrib.contenttypes', 'inventory']\n"
        "DATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql', 'NAME': 'bench',\n"
        "    'HOST': os.environ.get('PGHOST', 'localhost'), 'PORT': os.environ.get('PGPORT', ''),\n"
        "    'USER': os.environ.get('PGUSER', ''), 'PASSWORD': os.environ.get('PGPASSWORD', '')}}\n"
    )
    app = root / "inventory"
    (app / "migrations").mkdir(parents=True)
    (app / "__init__.py").write_text("")
    (app / "migrations" / "__init__.py").write_text("")
    models = ["from django.db import models\n"]
    for i in range(MODELS):
        models.append(f"class M{i}(models.Model):\n    name = models.CharField(max_length=40)\n"
                      f"    qty = models.IntegerField(default=0)\n")
    (app / "models.py").write_text("\n".join(models))
    per = -(-MODELS // OWN_MIGRATIONS)
    chunks = [list(range(MODELS))[i:i + per] for i in range(0, MODELS, per)]
    chunks += [[] for _ in range(OWN_MIGRATIONS - len(chunks))]
    for n, chunk in enumerate(chunks, start=1):
        deps = f"[('inventory', '{n - 1:04d}_m')]" if n > 1 else "[]"
        ops = []
        for i in chunk:
            ops.append(f"migrations.CreateModel(name='M{i}', fields=[('id', models.BigAutoField(primary_key=True, "
                       f"serialize=False, auto_created=True)), ('name', models.CharField(max_length=40))])")
            ops.append(f"migrations.AddField(model_name='m{i}', name='qty', field=models.IntegerField(default=0))")
        if not chunk:
            ops.append("migrations.RunSQL('SELECT 1', migrations.RunSQL.noop)")
        (app / "migrations" / f"{n:04d}_m.py").write_text(
            "from django.db import migrations, models\n\nclass Migration(migrations.Migration):\n"
            f"    dependencies = {deps}\n    operations = [\n        " + ",\n        ".join(ops) + "\n    ]\n"
        )
    tests = root / "tests"
    tests.mkdir()
    (root / "conftest.py").write_text(CONFTEST)  # at the root: session fixtures' hooks are the session's
    body = ["import pytest\nfrom inventory import models\n"]
    for i in range(30):
        body.append(f"@pytest.mark.django_db(transaction=True)\ndef test_tx_{i}():\n"
                    f"    models.M{i % MODELS}.objects.create(name='x')\n")
    (tests / "test_tx.py").write_text("\n".join(body))
    (tests / "test_one.py").write_text("import pytest\nfrom inventory import models\n\n@pytest.mark.django_db\n"
                                       "def test_one():\n    assert models.M0.objects.count() == 0\n")
    pin = '[tool.testbed.postgres]\nmigrations = "django"\n' if testbed else ""
    (root / "pyproject.toml").write_text(
        f"{pin}\n[tool.pytest.ini_options]\nDJANGO_SETTINGS_MODULE = 'site_.settings'\npythonpath = ['.']\n"
        "asyncio_default_fixture_loop_scope = 'function'\n")


WALLS: list[float] = []  # whole-process wall time of each run(), ms


def run(root: Path, args: list[str], env: dict[str, str], out: Path) -> list[dict[str, object]]:
    for old in out.parent.glob(out.name + ".*"):
        old.unlink()
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
                           *args], cwd=root, env={**env, "BENCH_OUT": str(out)}, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S)
    WALLS.append((time.perf_counter() - started) * 1000)
    if done.returncode != 0:
        sys.exit(f"a benchmark run failed ({root.name} {' '.join(args)}):\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
    rows = []
    for part in out.parent.glob(out.name + ".*"):
        rows += [json.loads(line) for line in part.read_text().splitlines() if line]
    return rows


def setup_ms(rows: list[dict[str, object]]) -> float:
    return max(float(r["setup_db_ms"]) for r in rows if r.get("setup_db_ms") is not None)  # type: ignore[arg-type]


def teardowns(rows: list[dict[str, object]]) -> list[float]:
    return [float(r["ms"]) for r in rows if r["when"] == "teardown" and "test_tx_" in str(r["id"])]  # type: ignore[arg-type]


ASYNC_SUITE = '''
import pytest

@pytest.mark.asyncio
@pytest.mark.parametrize("i", range({n}))
async def test_with(i, async_db):
    await async_db.execute("select 1")

@pytest.mark.asyncio
@pytest.mark.parametrize("i", range({n}))
async def test_without(i):
    pass
'''


def async_overhead(work: Path, n: int, env: dict[str, str]) -> float:
    root = work / "async"
    root.mkdir(exist_ok=True)
    (root / "pyproject.toml").write_text("[tool.testbed.postgres]\n[tool.pytest.ini_options]\n"
                                         "asyncio_default_fixture_loop_scope = 'function'\n")
    (root / "conftest.py").write_text(CONFTEST)
    (root / "test_async.py").write_text(ASYNC_SUITE.format(n=n))
    rows = run(root, ["-p", "no:django"], env, work / "async.json")
    per: dict[str, float] = {}
    for r in rows:
        if r["when"] in ("setup", "teardown"):
            per[str(r["id"])] = per.get(str(r["id"]), 0.0) + float(r["ms"])  # type: ignore[arg-type]
    with_ = [v for k, v in per.items() if "test_with[" in k][5:]  # the first ones pay the server start
    without = [v for k, v in per.items() if "test_without[" in k][5:]
    return statistics.median(with_) - statistics.median(without)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    reps = 2 if args.quick else 5
    import testbed

    work = Path(tempfile.mkdtemp(prefix="testbed-bench-django-"))
    # Bytecode is written (as on a developer's machine), for both sides alike.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTEST_XDIST_WORKER")}
    env["TESTBED_CACHE_DIR"] = str(work / "cache")
    try:
        with testbed.postgres(root=work) as pg:  # the peer's server: same binary, tmpfs, TCP with a password
            e = pg.endpoint
            peer_env = {**env, "PGHOST": e.host, "PGPORT": str(e.port), "PGUSER": "postgres",
                        "PGPASSWORD": str(getattr(e, "password", ""))}
            write_project(work / "tb", testbed=True)
            write_project(work / "peer", testbed=False)
            variants = {
                "testbed": lambda extra: run(work / "tb", ["tests/test_one.py", *extra], env, work / "tb.json"),
                "peer": lambda extra: run(work / "peer", ["-p", "no:testbed", "--create-db", "tests/test_one.py",
                                                          *extra], peer_env, work / "peer.json"),
            }
            for name in variants:  # warm-up: testbed builds its template cache here
                variants[name]([])
            results: dict[str, list[float]] = {f"{v}{x}": [] for v in variants for x in ("", "_n2")}
            walls: dict[str, list[float]] = {f"{v}{x}": [] for v in variants for x in ("", "_n2")}
            rng = random.Random(SEED)
            for _ in range(reps):
                order = [(v, x) for v in variants for x in ("", "_n2")]
                rng.shuffle(order)
                for name, x in order:
                    rows = variants[name](["-n", "2"] if x else [])
                    results[name + x].append(setup_ms(rows))
                    walls[name + x].append(WALLS[-1])
            tx = {"testbed": teardowns(run(work / "tb", ["tests/test_tx.py"], env, work / "tbtx.json")),
                  "peer": teardowns(run(work / "peer", ["-p", "no:testbed", "--create-db", "tests/test_tx.py"],
                                        peer_env, work / "peertx.json"))}
        async_ms = async_overhead(work, 40 if args.quick else 200, env)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in results.items()}
    tx_med = {k: statistics.median(v) for k, v in tx.items()}
    wall = {k: statistics.median(v) for k, v in walls.items()}
    print(f"{'':34} {'testbed':>10} {'pytest-django':>14} {'ratio':>7}")
    print(f"{'test-database setup, ms':34} {med['testbed']:10.0f} {med['peer']:14.0f} "
          f"{med['testbed'] / med['peer']:7.3f}")
    print(f"{'  under -n 2 (slowest worker), ms':34} {med['testbed_n2']:10.0f} {med['peer_n2']:14.0f} "
          f"{med['testbed_n2'] / med['peer_n2']:7.3f}")
    print(f"{'whole pytest process, one test, ms':34} {wall['testbed']:10.0f} {wall['peer']:14.0f} "
          f"{wall['testbed'] / wall['peer']:7.3f}")
    print(f"{'  under -n 2, ms':34} {wall['testbed_n2']:10.0f} {wall['peer_n2']:14.0f} "
          f"{wall['testbed_n2'] / wall['peer_n2']:7.3f}")
    print(f"{'transaction=True teardown, ms/test':34} {tx_med['testbed']:10.1f} {tx_med['peer']:14.1f} "
          f"{tx_med['testbed'] / tx_med['peer']:7.3f}")
    print(f"async_db rollback overhead per test: {async_ms:.2f} ms")
    print(
        f"RESULT setup_testbed_ms={med['testbed']:.0f} setup_peer_ms={med['peer']:.0f} "
        f"setup_ratio={med['testbed'] / med['peer']:.3f} setup_n2_testbed_ms={med['testbed_n2']:.0f} "
        f"setup_n2_peer_ms={med['peer_n2']:.0f} setup_n2_ratio={med['testbed_n2'] / med['peer_n2']:.3f} "
        f"tx_teardown_testbed_ms={tx_med['testbed']:.2f} tx_teardown_peer_ms={tx_med['peer']:.2f} "
        f"tx_teardown_ratio={tx_med['testbed'] / tx_med['peer']:.3f} async_rollback_overhead_ms={async_ms:.2f} "
        f"wall_testbed_ms={wall['testbed']:.0f} wall_peer_ms={wall['peer']:.0f} "
        f"wall_n2_testbed_ms={wall['testbed_n2']:.0f} wall_n2_peer_ms={wall['peer_n2']:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
