"""Order record and `testbed bisect` on a real suite with a planted polluter."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from testbed.hygiene.order import order_folder, read_record

POLLUTER = "tests/test_f1.py::test_1_3"
VICTIM = "tests/test_f3.py::test_3_7"
ALL = [f"tests/test_f{f}.py::test_{f}_{t}" for f in range(4) for t in range(10)]


def planted_suite(root: Path) -> None:
    """4 modules x 10 tests; test_1_3 leaves state in a shared module that test_3_7 trips over."""
    (root / "pyproject.toml").write_text("")
    tests = root / "tests"
    tests.mkdir()
    (tests / "shared_state.py").write_text("CACHE = {}\n")
    (tests / "conftest.py").write_text("import sys, os\nsys.path.insert(0, os.path.dirname(__file__))\n")
    for f in range(4):
        body = ["import shared_state", ""]
        for t in range(10):
            nodeid = f"tests/test_f{f}.py::test_{f}_{t}"
            if nodeid == POLLUTER:
                body.append(f"def test_{f}_{t}():\n    shared_state.CACHE['user'] = 'stale'\n")
            elif nodeid == VICTIM:
                body.append(f"def test_{f}_{t}():\n    assert 'user' not in shared_state.CACHE\n")
            else:
                body.append(f"def test_{f}_{t}():\n    pass\n")
        (tests / f"test_f{f}.py").write_text("\n".join(body))


def run_testbed(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "testbed.cli", "--root", str(root), *args], cwd=root,
                          capture_output=True, text=True, timeout=600)


def failing_seed(pytester: pytest.Pytester) -> int:
    """A pytest-randomly seed whose order runs the polluter before the victim (collection only: cheap)."""
    for seed in range(1, 50):
        ids = [line for line in pytester.runpytest("--co", "-q", "-p", "randomly", f"--randomly-seed={seed}",
                                                   "-p", "no:cacheprovider").outlines if "::" in line]
        if ids.index(POLLUTER) < ids.index(VICTIM):
            return seed
    raise AssertionError("no seed orders the polluter first")


def test_seeded_failure_is_recorded_and_bisect_finds_the_polluter(pytester: pytest.Pytester) -> None:
    planted_suite(pytester.path)
    seed = failing_seed(pytester)
    result = pytester.runpytest("-p", "randomly", f"--randomly-seed={seed}")
    result.assert_outcomes(passed=39, failed=1)
    result.stdout.fnmatch_lines([f"testbed: the order of this run is recorded (pytest-randomly seed {seed}, in *). "
                                 "If a failure depends on a test that ran before it, this finds that test: "
                                 f"testbed bisect '{VICTIM}'"])
    record = read_record(order_folder(pytester.path / ".pytest_cache"))
    assert record.run["seed"] == seed
    worker = record.workers["main"]
    assert sorted(worker.tests) == sorted(ALL)
    assert worker.outcomes[VICTIM] == "failed" and POLLUTER in worker.before(VICTIM)

    out = run_testbed(pytester.path, "bisect", VICTIM)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"the polluting test is: {POLLUTER}" in out.stdout
    runs = int(out.stdout.rsplit("runs: ", 1)[1])
    assert runs <= len(worker.before(VICTIM)).bit_length() + 3  # O(log n)
    # The replays used a cache of their own: the record still describes the real run.
    assert read_record(order_folder(pytester.path / ".pytest_cache")).run["seed"] == seed


def test_under_xdist_each_worker_records_its_own_order(pytester: pytest.Pytester) -> None:
    planted_suite(pytester.path)
    pytester.runpytest("-n", "2", "-p", "randomly", "--randomly-seed=3")
    record = read_record(order_folder(pytester.path / ".pytest_cache"))
    assert set(record.workers) == {"gw0", "gw1"}
    assert all(w.tests for w in record.workers.values())
    assert sorted(t for w in record.workers.values() for t in w.tests) == sorted(ALL)
    assert record.run["xdist"] is True and record.run["seed"] == 3


def test_recorded_data_pollution_names_the_polluter_without_bisecting(pytester: pytest.Pytester) -> None:
    planted_suite(pytester.path)
    # What the isolation layer does when a test leaves rows behind: it tells the order record.
    (pytester.path / "tests" / "conftest.py").write_text(textwrap.dedent("""
        import os, sys
        import pytest
        from testbed.hygiene.order import record_pollution
        sys.path.insert(0, os.path.dirname(__file__))

        @pytest.fixture(autouse=True)
        def leftover_check(request):
            yield
            if request.node.name == "test_1_3":
                record_pollution(request.node.nodeid, "left 1 row in customers")
    """))
    order = ["tests/test_f0.py::test_0_0", POLLUTER, "tests/test_f2.py::test_2_2", VICTIM]
    (pytester.path / "conftest.py").write_text(textwrap.dedent(f"""
        def pytest_collection_modifyitems(items):
            order = {order!r}
            items[:] = sorted((i for i in items if i.nodeid in order), key=lambda i: order.index(i.nodeid))
    """))
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=3, failed=1)
    record = read_record(order_folder(pytester.path / ".pytest_cache"))
    assert [(p.nodeid, p.what) for p in record.workers["main"].pollution] == [(POLLUTER, "left 1 row in customers")]
    out = run_testbed(pytester.path, "bisect", VICTIM)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"the isolation layer recorded that {POLLUTER} left something behind" in out.stdout
    assert f"the polluting test is: {POLLUTER}" in out.stdout
    assert "runs: 2" in out.stdout


def test_rows_a_test_left_behind_are_recorded_and_name_the_polluter(pytester: pytest.Pytester) -> None:
    # End to end: the leak check finds rows an isolation = "none" test committed, publishes it (observe), the
    # order record keeps it, and bisect names that test from the record without bisecting.
    (pytester.path / "migrations").mkdir()
    (pytester.path / "migrations" / "001.sql").write_text("CREATE TABLE customers (id bigserial PRIMARY KEY);\n")
    (pytester.path / "pyproject.toml").write_text('[tool.testbed.postgres]\nmigrations = "migrations/"\n')
    pytester.makepyfile(test_db=textwrap.dedent("""
        import pytest

        CACHE = {}

        def test_a(db):
            pass

        @pytest.mark.testbed(isolation="none")
        def test_b_leaves_a_row(db):
            db.execute("insert into customers default values")
            db.commit()
            CACHE["customers"] = 1  # what the app cached of that row outlives the row testbed removes

        def test_c(db):
            pass

        def test_d_victim(db):
            count = db.execute("select count(*) from customers").fetchone()[0]
            assert CACHE.get("customers", count) == count
    """))
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=2)  # b fails at teardown naming the row it left (its own failure); d fails
    record = read_record(order_folder(pytester.path / ".pytest_cache"))
    assert [p.nodeid for p in record.workers["main"].pollution] == ["test_db.py::test_b_leaves_a_row"]
    out = run_testbed(pytester.path, "bisect", "test_db.py::test_d_victim")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "the isolation layer recorded that test_db.py::test_b_leaves_a_row left something behind" in out.stdout
    assert "the polluting test is: test_db.py::test_b_leaves_a_row" in out.stdout


def test_bisect_explains_what_it_cannot_do(pytester: pytest.Pytester) -> None:
    planted_suite(pytester.path)
    out = run_testbed(pytester.path, "bisect", VICTIM)
    assert out.returncode == 1
    assert "no order record in" in out.stderr and "run the suite once" in out.stderr
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=39, failed=1)
    pytester.runpytest("--co", "-q")  # collecting only keeps the last real run's record
    assert len(read_record(order_folder(pytester.path / ".pytest_cache")).workers["main"].tests) == 40
    out = run_testbed(pytester.path, "bisect", "tests/test_f3.py::test_3_77")
    assert "did not run in the last recorded run. Did you mean tests/test_f3.py::test_3_7?" in out.stderr


def test_replays_run_exactly_the_listed_tests_and_record_nothing(pytester: pytest.Pytester) -> None:
    planted_suite(pytester.path)
    order = [VICTIM, POLLUTER, VICTIM]
    spec = pytester.path / "replay.json"
    spec.write_text(json.dumps({"tests": order, "results": str(pytester.path / "results.json")}))
    pytester.runpytest("-p", "no:randomly", "tests", f"--testbed-replay={spec}").assert_outcomes(passed=2, failed=1)
    results = json.loads((pytester.path / "results.json").read_text())["results"]
    assert [(t, o) for t, o, _ in results] == [(VICTIM, "passed"), (POLLUTER, "passed"), (VICTIM, "failed")]
    assert not order_folder(pytester.path / ".pytest_cache").exists()
    spec.write_text(json.dumps({"tests": ["tests/test_f9.py::gone"], "results": str(pytester.path / "r.json")}))
    result = pytester.runpytest("-p", "no:randomly", "tests", f"--testbed-replay={spec}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--testbed-replay: 1 test(s) of the replay were not collected: "
                                 "tests/test_f9.py::gone. Were they renamed or removed since the recorded run?"])


def test_bisect_reuses_one_postgres_for_every_replay(pytester: pytest.Pytester) -> None:
    (pytester.path / "migrations").mkdir()
    (pytester.path / "migrations" / "001.sql").write_text("CREATE TABLE customers (id bigserial PRIMARY KEY);\n")
    (pytester.path / "pyproject.toml").write_text('[tool.testbed.postgres]\nmigrations = "migrations/"\n')
    pytester.makepyfile(test_db=textwrap.dedent("""
        SEEN = []

        def test_a(db):
            db.execute("insert into customers default values")

        def test_b_pollutes(db):
            SEEN.append("b")

        def test_c(db):
            pass

        def test_d_victim(db):
            assert db.execute("select count(*) from customers").fetchone() == (0,)
            assert SEEN == []
    """))
    pytester.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=3, failed=1)
    out = run_testbed(pytester.path, "bisect", "test_db.py::test_d_victim")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "starting PostgreSQL once for every replay" in out.stdout
    assert "the polluting test is: test_db.py::test_b_pollutes" in out.stdout
