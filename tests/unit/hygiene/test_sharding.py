"""The shard split: every test in exactly one shard, the same plan on every machine, balanced by time."""

from __future__ import annotations

import random

import pytest

from testbed.hygiene.sharding import estimate, parse_shard, split


def skewed_suite(seed: int, n: int = 3000) -> dict[str, float]:
    rng = random.Random(seed)
    durations: dict[str, float] = {}
    module = 0
    while len(durations) < n:
        scale = rng.lognormvariate(-3.0, 1.5)  # some modules are a hundred times slower than others
        for k in range(max(1, int(rng.paretovariate(1.5) * 8))):
            durations[f"tests/test_m{module}.py::test_{k}"] = scale * rng.lognormvariate(0, 0.8)
        module += 1
    return durations


def test_parse_shard() -> None:
    assert parse_shard("2/8") == (2, 8)
    for bad in ("0/8", "9/8", "2/0", "2", "a/b", "1/2/3"):
        with pytest.raises(ValueError):
            parse_shard(bad)


@pytest.mark.parametrize("count", [1, 3, 8, 32])
def test_every_test_in_exactly_one_shard(count: int) -> None:
    durations = skewed_suite(1, 500)
    tests = list(durations)
    plan = split(tests, durations, count)
    assigned = [t for shard in plan.shards for t in shard]
    assert sorted(assigned) == sorted(tests)
    assert len(plan.shards) == count


def test_the_plan_does_not_depend_on_the_run_order() -> None:
    # Each CI shard runs its own pytest with its own random order: all of them must compute the same plan.
    durations = skewed_suite(2, 800)
    tests = list(durations)
    shuffled = tests[:]
    random.Random(5).shuffle(shuffled)
    a, b = split(tests, durations, 8), split(shuffled, durations, 8)
    assert [set(s) for s in a.shards] == [set(s) for s in b.shards]
    # ... and each shard keeps the order it was given
    for shard in b.shards:
        positions = [shuffled.index(t) for t in shard]
        assert positions == sorted(positions)


@pytest.mark.parametrize("count", [8, 32])
def test_skewed_durations_balance_within_three_percent(count: int) -> None:
    durations = skewed_suite(3)
    plan = split(list(durations), durations, count)
    ideal = sum(durations.values()) / count
    assert max(plan.loads) <= max(ideal * 1.03, max(durations.values()))


def test_new_tests_are_estimated_from_their_module() -> None:
    durations = {"tests/test_slow.py::test_a": 10.0, "tests/test_slow.py::test_b": 20.0,
                 "tests/test_fast.py::test_a": 0.01}
    tests = [*durations, "tests/test_slow.py::test_new", "tests/test_fast.py::test_new", "tests/other/test_x.py::t"]
    est = estimate(tests, durations)
    assert est.tests["tests/test_slow.py::test_new"] == 15.0
    assert est.tests["tests/test_fast.py::test_new"] == 0.01
    assert est.tests["tests/other/test_x.py::t"] == pytest.approx((10 + 20 + 0.01) / 3)
    assert est.unknown == 3


def test_without_durations_the_split_is_by_count() -> None:
    tests = [f"tests/test_a.py::test_{i}" for i in range(10)]
    plan = split(tests, {}, 3)
    assert sorted(len(s) for s in plan.shards) == [3, 3, 4]


def test_more_shards_than_tests_leaves_shards_empty() -> None:
    plan = split(["t.py::a", "t.py::b"], {}, 5)
    assert sorted(len(s) for s in plan.shards) == [0, 0, 0, 1, 1]


def test_module_fixture_cost_is_paid_once_by_keeping_the_module_together() -> None:
    # tests/test_db.py's module fixture takes 5 s; its tests are quick. Spread over shards, every shard
    # would pay the 5 s; kept together, one shard pays it once.
    durations = {f"tests/test_db.py::test_{i}": 0.1 for i in range(10)}
    durations["tests/test_db.py"] = 5.0
    durations.update({f"tests/test_unit.py::test_{i}": 0.6 for i in range(10)})
    plan = split(list(k for k in durations if "::" in k), durations, 2)
    holding = [i for i, shard in enumerate(plan.shards) if any("test_db" in t for t in shard)]
    assert len(holding) == 1
    assert max(plan.loads) == pytest.approx(6.0)
