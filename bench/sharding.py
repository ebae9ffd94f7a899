"""Shard balance: testbed's split (--testbed-shard) vs pytest-split's algorithms, on the same simulated suites.

What it measures: 10,000 simulated tests with skewed durations (module speeds lognormal over two orders of
magnitude, module sizes Pareto-distributed, a few tests of 5-30 s) where a quarter of the modules have a
module-scoped fixture costing 0.5-6 s (a schema load, a server client), paid once by every shard that runs
any test of that module. Each tool splits by what it would have recorded from an earlier run:

- testbed: each test's own time, and the module fixture's setup under the module's id (its durations file);
- pytest-split: each test's total, with the module fixture billed to the first test of the module that ran
  (what its --store-durations writes); both of its algorithms, least_duration and the default
  duration_based_chunks.

The figure is the true time of the heaviest shard (tests + module fixtures it pays) divided by the ideal
(all work, each module fixture once, over N shards), median over seeded suites. Three scenarios: "plain"
(no module fixtures: both tools place longest first and should tie), "recorded" (durations exactly as
measured) and "drift" (every test up to 10% off its recorded time, 5% of tests new).
Also the time each split takes to compute (both run in every CI shard).

Run:  .venv/bin/python bench/sharding.py [--quick]
The last line is ``RESULT key=value ...``; goal: testbed's heaviest/ideal <= 1.03 on the recorded scenario.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from pytest_split.algorithms import Algorithms  # noqa: E402

from testbed.hygiene.sharding import split  # noqa: E402

TESTS = 10_000
SHARDS = (8, 32)


@dataclass
class Suite:
    tests: list[str]
    true: dict[str, float]
    module_cost: dict[str, float]
    ours: dict[str, float]  # testbed's durations file
    theirs: dict[str, float]  # pytest-split's durations file

    def true_load(self, shard: list[str]) -> float:
        modules = {t.split("::", 1)[0] for t in shard}
        return sum(self.true[t] for t in shard) + sum(self.module_cost.get(m, 0.0) for m in modules)

    def ideal(self, count: int) -> float:
        return (sum(self.true.values()) + sum(self.module_cost.values())) / count


def make_suite(seed: int, *, drift: bool, fixtures: bool = True) -> Suite:
    rng = random.Random(seed)
    tests: list[str] = []
    true: dict[str, float] = {}
    module_cost: dict[str, float] = {}
    module = 0
    while len(tests) < TESTS:
        folder = rng.choice(["tests/integration/api", "tests/integration/db", "tests/integration/events"])
        name = f"{folder}/test_m{module}.py"
        module += 1
        scale = rng.lognormvariate(-3.0, 1.5)
        if rng.random() < 0.25 and fixtures:
            module_cost[name] = rng.uniform(0.5, 6.0)
        for k in range(min(TESTS - len(tests), max(1, int(rng.paretovariate(1.5) * 8)))):
            nodeid = f"{name}::test_{k}"
            seconds = scale * rng.lognormvariate(0, 0.8)
            if rng.random() < 0.002:
                seconds += rng.uniform(5, 30)
            tests.append(nodeid)
            true[nodeid] = seconds
    ours: dict[str, float] = {}
    theirs: dict[str, float] = {}
    billed: set[str] = set()
    for nodeid in tests:
        if drift and rng.random() < 0.05:
            continue  # a new test: in neither file
        recorded = true[nodeid] * (rng.uniform(0.9, 1.1) if drift else 1.0)
        module_id = nodeid.split("::", 1)[0]
        ours[nodeid] = recorded
        first = module_id in module_cost and module_id not in billed
        theirs[nodeid] = recorded + (module_cost[module_id] if first else 0.0)
        billed.add(module_id)
    ours.update(module_cost)
    return Suite(tests, true, module_cost, ours, theirs)


class _Item:
    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid


def testbed_split(suite: Suite, count: int) -> list[list[str]]:
    return [list(s) for s in split(suite.tests, suite.ours, count).shards]


def pytest_split(algorithm: str) -> Callable[[Suite, int], list[list[str]]]:
    def run(suite: Suite, count: int) -> list[list[str]]:
        items = [_Item(t) for t in suite.tests]
        groups = Algorithms[algorithm].value(count, items, suite.theirs)
        return [[i.nodeid for i in g.selected] for g in groups]

    return run


SPLITTERS = {
    "testbed": testbed_split,
    "split_least_duration": pytest_split("least_duration"),
    "split_chunks": pytest_split("duration_based_chunks"),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 suites instead of 7; finishes in under 60 s")
    args = ap.parse_args()
    seeds = list(range(1, 4 if args.quick else 8))
    order_rng = random.Random(20261130)
    balance: dict[tuple[str, str, int], list[float]] = {}
    compute_ms: dict[str, list[float]] = {name: [] for name in SPLITTERS}
    # Warm-up: one untimed split each.
    warm = make_suite(0, drift=False)
    for splitter in SPLITTERS.values():
        splitter(warm, 8)
    scenarios = ("plain", "recorded", "drift")
    for scenario in scenarios:
        for seed in seeds:
            suite = make_suite(seed, drift=scenario == "drift", fixtures=scenario != "plain")
            for count in SHARDS:
                names = list(SPLITTERS)
                order_rng.shuffle(names)  # interleaved, in a different order every time
                for name in names:
                    start = time.perf_counter()
                    shards = SPLITTERS[name](suite, count)
                    compute_ms[name].append((time.perf_counter() - start) * 1000)
                    assert sorted(t for s in shards for t in s) == sorted(suite.tests), name
                    worst = max(suite.true_load(s) for s in shards)
                    balance.setdefault((scenario, name, count), []).append(worst / suite.ideal(count))
    print(f"{TESTS} simulated tests, {len(seeds)} seeded suites per scenario; heaviest shard / ideal (median)")
    print(f"{'scenario':<10}{'shards':>7}  " + "".join(f"{name:>22}" for name in SPLITTERS))
    med = {key: statistics.median(values) for key, values in balance.items()}
    for scenario in scenarios:
        for count in SHARDS:
            cells = "".join(f"{med[(scenario, name, count)]:>22.3f}" for name in SPLITTERS)
            print(f"{scenario:<10}{count:>7}  {cells}")
    print("compute time per split (ms, median): " + ", ".join(
        f"{name} {statistics.median(ms):.0f}" for name, ms in compute_ms.items()))
    fields = []
    for scenario, prefix in (("recorded", ""), ("drift", "drift_"), ("plain", "plain_")):
        for count in SHARDS:
            ours = med[(scenario, "testbed", count)]
            peer = med[(scenario, "split_least_duration", count)]
            chunks = med[(scenario, "split_chunks", count)]
            fields += [f"{prefix}testbed_{count}={ours:.3f}", f"{prefix}split_least_duration_{count}={peer:.3f}",
                       f"{prefix}split_chunks_{count}={chunks:.3f}", f"{prefix}ratio_{count}={ours / peer:.3f}"]
    goal = all(med[("recorded", "testbed", c)] <= 1.03 for c in SHARDS)
    fields.append(f"testbed_ms={statistics.median(compute_ms['testbed']):.0f}")
    fields.append(f"split_ms={statistics.median(compute_ms['split_least_duration']):.0f}")
    fields.append(f"goal_1_03={'met' if goal else 'missed'}")
    print("RESULT " + " ".join(fields))
    return 0


if __name__ == "__main__":
    sys.exit(main())
