"""The order record's reading, and the bisection algorithm on simulated suites (no pytest runs)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from testbed.hygiene.bisect import find_polluter
from testbed.hygiene.order import OrderWriter, default_cache_dir, read_record, start_run


def test_record_per_worker_with_a_crash_and_pollution(tmp_path: Path) -> None:
    start_run(tmp_path, {"seed": 7})
    gw0, gw1 = OrderWriter(tmp_path, "gw0"), OrderWriter(tmp_path, "gw1")
    for nodeid in ("t.py::a", "t.py::b"):
        gw0.started(nodeid)
        gw0.finished(nodeid, "passed")
    gw0.pollution("t.py::b", "left 2 rows in customers")
    gw0.started("t.py::c")
    gw0.finished("t.py::c", "failed")
    gw1.started("t.py::d")  # crashed: never finished
    gw0.close()
    gw1.close()
    (tmp_path / "gw1.jsonl").write_text((tmp_path / "gw1.jsonl").read_text() + '{"start": "t.py::e"')  # torn line
    record = read_record(tmp_path)
    assert record.run == {"seed": 7}
    assert record.workers["gw0"].tests == ["t.py::a", "t.py::b", "t.py::c"]
    assert record.workers["gw0"].before("t.py::c") == ["t.py::a", "t.py::b"]
    assert record.workers["gw1"].outcomes == {"t.py::d": "crashed"}
    assert record.worker_of("t.py::c").worker == "gw0"
    assert record.failed() == ["t.py::c"]
    assert [(p.nodeid, p.position) for p in record.workers["gw0"].pollution] == [("t.py::b", 2)]
    start_run(tmp_path, {"seed": 8})  # the next run forgets the last one
    assert read_record(tmp_path).workers == {}


def test_cache_dir_from_the_project_config(tmp_path: Path) -> None:
    assert default_cache_dir(tmp_path) == tmp_path / ".pytest_cache"
    (tmp_path / "pyproject.toml").write_text('[tool.pytest.ini_options]\ncache_dir = "build/cache"\n')
    assert default_cache_dir(tmp_path) == tmp_path / "build/cache"
    (tmp_path / "pyproject.toml").unlink()
    (tmp_path / "pytest.ini").write_text("[pytest]\ncache_dir = .c\n")
    assert default_cache_dir(tmp_path) == tmp_path / ".c"


def simulated(polluters: set[str], victim_fails_alone: bool = False):  # type: ignore[no-untyped-def]
    """fails_after for a suite where the victim fails iff all of ``polluters`` ran before it."""
    calls: list[list[str]] = []

    def fails_after(tests: list[str]) -> bool:
        calls.append(tests)
        return victim_fails_alone or (bool(polluters) and polluters <= set(tests))

    return fails_after, calls


@pytest.mark.parametrize("n", [1, 2, 3, 10, 499])
@pytest.mark.parametrize("where", [0, 0.5, 1])
def test_finds_the_polluter_in_log_n_runs(n: int, where: float) -> None:
    tests = [f"t.py::test_{i}" for i in range(n)]
    polluter = tests[min(n - 1, int(where * n))]
    fails_after, calls = simulated({polluter})
    result = find_polluter("t.py::victim", tests, fails_after)
    assert (result.verdict, result.polluter) == ("polluter", polluter)
    assert result.runs == len(calls) <= math.ceil(math.log2(n)) + 3
    assert calls[0] == []  # first: the victim alone


def test_a_test_that_fails_alone_is_not_bisected() -> None:
    fails_after, calls = simulated(set(), victim_fails_alone=True)
    result = find_polluter("t.py::victim", ["t.py::a", "t.py::b"], fails_after)
    assert (result.verdict, result.runs) == ("fails alone", 1)
    assert "does not depend on order" in result.summary()


def test_a_failure_that_does_not_reproduce_says_so() -> None:
    fails_after, _ = simulated(set())
    result = find_polluter("t.py::victim", ["t.py::a", "t.py::b"], fails_after)
    assert result.verdict == "does not reproduce"
    assert "flaky" in result.summary()


@pytest.mark.parametrize("n", [8, 100])
def test_two_tests_that_pollute_only_together_are_both_named(n: int) -> None:
    tests = [f"t.py::test_{i}" for i in range(n)]
    fails_after, calls = simulated({tests[1], tests[n - 2]})
    result = find_polluter("t.py::victim", tests, fails_after)
    assert result.verdict == "needs several tests"
    assert result.remaining == [tests[1], tests[n - 2]]
    assert result.runs == len(calls) <= 60
    assert "it fails after these 2 together" in result.summary()


def test_recorded_pollution_is_confirmed_without_bisecting() -> None:
    tests = [f"t.py::test_{i}" for i in range(100)]
    fails_after, calls = simulated({tests[42]})
    result = find_polluter("t.py::victim", tests, fails_after, suspect=tests[42])
    assert (result.polluter, result.runs) == (tests[42], 2)
    wrong = find_polluter("t.py::victim", tests, simulated({tests[42]})[0], suspect=tests[7])
    assert wrong.polluter == tests[42]  # a wrong suspect costs one run, then bisection finds the real one


def test_record_file_is_json_lines(tmp_path: Path) -> None:
    writer = OrderWriter(tmp_path, "main")
    writer.started("t.py::a")
    writer.close()
    assert json.loads((tmp_path / "main.jsonl").read_text()) == {"start": "t.py::a"}
