"""Duration-balanced shards: split a suite over N CI jobs so that they finish together.

Each test gets an estimate: its recorded duration, else the mean of its module's recorded tests, else of
its folder's, else of the whole suite (a new test in a slow module is probably slow; pytest-split gives
every new test the suite's mean). A module whose module- or class-scoped fixtures cost time is placed as
one piece, so one shard pays that setup once (pytest-split bills it to whichever test ran first and
then pays it again in every shard that gets some of the module). Pieces go longest first onto the shard
where they cost least; then single tests move (or swap) from the heaviest shard to the lightest while
that lowers the heaviest.

The split depends only on the test ids and the durations file, never on the run's random order, so every
shard computes the same plan; within a shard the run keeps its own order.
"""

from __future__ import annotations

import heapq
import math
import posixpath
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/8"`` -> (2, 8); raises ValueError with the reason."""
    try:
        index_text, count_text = text.split("/")
        index, count = int(index_text), int(count_text)
    except ValueError:
        raise ValueError(f"{text!r} is not I/N (e.g. 2/8: the second of eight shards)") from None
    if count < 1 or not 1 <= index <= count:
        raise ValueError(f"{text!r}: I must be from 1 to N and N at least 1")
    return index, count


def scopes_of(nodeid: str) -> tuple[str, ...]:
    """The module and class ids a test belongs to: ``a.py::C::t`` -> (``a.py``, ``a.py::C``)."""
    parts = nodeid.split("::")
    return tuple("::".join(parts[:i]) for i in range(1, len(parts)))


@dataclass(frozen=True)
class Estimates:
    """Each test's estimated own duration, and the fixture setup of each module and class."""

    tests: dict[str, float]
    scope_costs: dict[str, float]
    unknown: int  # tests without a recorded duration


def estimate(nodeids: Sequence[str], durations: Mapping[str, float]) -> Estimates:
    """Estimate every test's duration from the recorded ones (see the module docstring)."""
    wanted = set(nodeids)
    by_module: dict[str, list[float]] = defaultdict(list)
    by_folder: dict[str, list[float]] = defaultdict(list)
    known: list[float] = []
    for nodeid in nodeids:
        if nodeid in durations:
            module = nodeid.split("::", 1)[0]
            by_module[module].append(durations[nodeid])
            by_folder[posixpath.dirname(module)].append(durations[nodeid])
            known.append(durations[nodeid])
    suite_mean = sum(known) / len(known) if known else 1.0
    tests: dict[str, float] = {}
    unknown = 0
    for nodeid in nodeids:
        if nodeid in durations:
            tests[nodeid] = durations[nodeid]
            continue
        unknown += 1
        module = nodeid.split("::", 1)[0]
        folder = posixpath.dirname(module)
        pool = by_module.get(module) or by_folder.get(folder) or None
        tests[nodeid] = sum(pool) / len(pool) if pool else suite_mean
    scope_costs = {}
    for nodeid in nodeids:
        for scope in scopes_of(nodeid):
            if scope in durations and scope not in wanted:
                scope_costs[scope] = durations[scope]
    return Estimates(tests, scope_costs, unknown)


@dataclass(frozen=True)
class ShardPlan:
    """Which tests each shard runs (in the given order) and its estimated time."""

    shards: tuple[tuple[str, ...], ...]
    loads: tuple[float, ...]
    unknown: int

    @property
    def ideal(self) -> float:
        return sum(self.loads) / len(self.loads) if self.loads else 0.0

    @property
    def balance(self) -> float:
        """Heaviest shard / the mean shard (1.0 is perfect)."""
        return max(self.loads) / self.ideal if self.ideal else 1.0


class _Assignment:
    def __init__(self, count: int, est: Estimates) -> None:
        self.est = est
        self.members: list[set[str]] = [set() for _ in range(count)]
        self.scope_count: list[dict[str, int]] = [defaultdict(int) for _ in range(count)]
        self.loads = [0.0] * count

    def extra(self, shard: int, nodeid: str) -> float:
        """What adding ``nodeid`` costs on ``shard``: its time plus scopes the shard does not pay yet."""
        cost = self.est.tests[nodeid]
        for scope in scopes_of(nodeid):
            if scope in self.est.scope_costs and not self.scope_count[shard][scope]:
                cost += self.est.scope_costs[scope]
        return cost

    def saving(self, shard: int, nodeid: str) -> float:
        """What removing ``nodeid`` from ``shard`` saves."""
        cost = self.est.tests[nodeid]
        for scope in scopes_of(nodeid):
            if scope in self.est.scope_costs and self.scope_count[shard][scope] == 1:
                cost += self.est.scope_costs[scope]
        return cost

    def add(self, shard: int, nodeid: str) -> None:
        self.loads[shard] += self.extra(shard, nodeid)
        self.members[shard].add(nodeid)
        for scope in scopes_of(nodeid):
            self.scope_count[shard][scope] += 1

    def remove(self, shard: int, nodeid: str) -> None:
        self.loads[shard] -= self.saving(shard, nodeid)
        self.members[shard].discard(nodeid)
        for scope in scopes_of(nodeid):
            self.scope_count[shard][scope] -= 1


def _units(nodeids: Sequence[str], est: Estimates, count: int) -> list[list[str]]:
    """What to place as one piece: a test, or a module whose module/class fixtures cost time.

    A module kept whole pays its fixture setup once; one bigger than a whole shard is cut into chunks
    (each pays the setup again). Smaller chunks were measured worse: the repeated setup costs more than
    the finer pieces gain (bench/sharding.py).
    """
    if not est.scope_costs:
        return [[t] for t in nodeids]
    total = sum(est.tests.values()) + sum(est.scope_costs.values())
    target = max(total / count, 1e-9)
    units: list[list[str]] = []
    grouped: dict[str, list[str]] = defaultdict(list)
    for nodeid in nodeids:
        if any(scope in est.scope_costs for scope in scopes_of(nodeid)):
            grouped[nodeid.split("::", 1)[0]].append(nodeid)
        else:
            units.append([nodeid])
    for module, tests in grouped.items():
        own = sum(est.tests[t] for t in tests)
        setup = sum(c for scope, c in est.scope_costs.items() if scope == module or scope.startswith(module + "::"))
        pieces = max(1, min(len(tests), math.ceil((own + setup) / target - 1e-6)))
        chunks: list[list[str]] = [[] for _ in range(pieces)]
        sizes = [0.0] * pieces
        for nodeid in sorted(tests, key=lambda t: (-est.tests[t], t)):
            smallest = min(range(pieces), key=lambda i: (sizes[i], i))
            chunks[smallest].append(nodeid)
            sizes[smallest] += est.tests[nodeid]
        units.extend(chunk for chunk in chunks if chunk)
    return units


def split(nodeids: Sequence[str], durations: Mapping[str, float], count: int, *,
          refine_passes: int = 2000) -> ShardPlan:
    """Split ``nodeids`` over ``count`` shards, balanced by (estimated) duration."""
    est = estimate(nodeids, durations)
    plan = _Assignment(count, est)
    shards_with_scope: dict[str, set[int]] = defaultdict(set)
    heap = [(0.0, i) for i in range(count)]

    def unit_cost(shard: int, unit: list[str]) -> float:
        cost = sum(est.tests[t] for t in unit)
        scopes = {scope for t in unit for scope in scopes_of(t) if scope in est.scope_costs}
        return cost + sum(est.scope_costs[scope] for scope in scopes if not plan.scope_count[shard][scope])

    units = _units(nodeids, est, count)
    # Longest first; ties by id so every shard computes the same plan.
    for unit in sorted(units, key=lambda u: (-unit_cost(0, u) if count else 0.0, u[0])):
        while heap[0][0] != plan.loads[heap[0][1]]:  # an old load of a shard that got a test since
            heapq.heappop(heap)
        candidates = {heap[0][1]}
        for scope in {scope for t in unit for scope in scopes_of(t)}:
            if scope in est.scope_costs:
                candidates |= shards_with_scope[scope]
        best = min(candidates, key=lambda s: (plan.loads[s] + unit_cost(s, unit), s))
        for nodeid in unit:
            plan.add(best, nodeid)
            for scope in scopes_of(nodeid):
                if scope in est.scope_costs:
                    shards_with_scope[scope].add(best)
        heapq.heappush(heap, (plan.loads[best], best))
    _refine(plan, refine_passes)
    order = {t: i for i, t in enumerate(nodeids)}
    shards = tuple(tuple(sorted(members, key=order.__getitem__)) for members in plan.members)
    return ShardPlan(shards, tuple(plan.loads), est.unknown)


def _refine(plan: _Assignment, passes: int) -> None:
    """Move or swap single tests from the heaviest to the lightest shard while the heaviest gets lighter."""
    count = len(plan.loads)
    if count < 2:
        return
    for _ in range(passes):
        heavy = max(range(count), key=lambda s: (plan.loads[s], -s))
        light = min(range(count), key=lambda s: (plan.loads[s], s))
        gap = plan.loads[heavy] - plan.loads[light]
        if gap <= 1e-9:
            return
        best: tuple[float, str, str | None] | None = None  # (new max of the pair, moved, swapped back)
        for nodeid in sorted(plan.members[heavy]):
            gain = plan.saving(heavy, nodeid)
            cost = plan.extra(light, nodeid)
            if gain > 0 and cost < gap:
                new_max = max(plan.loads[heavy] - gain, plan.loads[light] + cost)
                if new_max < plan.loads[heavy] - 1e-9 and (best is None or new_max < best[0]):
                    best = (new_max, nodeid, None)
        if best is None:
            # No single move helps: try swapping a heavy test with a lighter one from the light shard.
            light_tests = sorted(plan.members[light], key=lambda t: plan.est.tests[t])
            for nodeid in sorted(plan.members[heavy], key=lambda t: -plan.est.tests[t])[:200]:
                for other in light_tests[:200]:
                    delta = plan.est.tests[nodeid] - plan.est.tests[other]
                    if 0 < delta < gap and not plan.est.scope_costs:
                        new_max = max(plan.loads[heavy] - delta, plan.loads[light] + delta)
                        if new_max < plan.loads[heavy] - 1e-9 and (best is None or new_max < best[0]):
                            best = (new_max, nodeid, other)
            if best is None:
                return
        _, moved, back = best
        plan.remove(heavy, moved)
        if back is not None:
            plan.remove(light, back)
            plan.add(heavy, back)
        plan.add(light, moved)
