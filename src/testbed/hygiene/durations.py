"""Durations, billed honestly: a test's own setup, call and teardown, with the setup and teardown of
fixtures shared by many tests (server starts, template builds, module and class fixtures) billed to the
scope that shares them instead of to whichever test happened to come first (pytest#8741,
pytest-split#61/#106, pytest-django#1014).

The file is pytest-split's ``.test_durations`` (a JSON object: node id -> seconds), so pytest-split and
its users read it as they always did. A test's value is its own time. Module and class nodes may appear
too (``tests/test_a.py``, ``tests/test_a.py::TestOrders``): their value is the setup of their module- or
class-scoped fixtures, paid once per shard that runs any of their tests; pytest-split never collects
such ids, so it ignores them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from testbed.errors import ConfigError

SESSION = "session"


@dataclass
class TestTime:
    """One test's own time per phase (seconds), with what was billed elsewhere taken out."""

    __test__ = False
    setup: float = 0.0
    call: float = 0.0
    teardown: float = 0.0

    @property
    def total(self) -> float:
        return self.setup + self.call + self.teardown


@dataclass
class ScopeCost:
    """Time of fixtures shared by many tests, billed to their scope (``session``, a module, a class)."""

    fixtures: dict[str, float] = field(default_factory=dict)  # "fixture name (setup|teardown)" -> seconds

    @property
    def total(self) -> float:
        return sum(self.fixtures.values())


@dataclass
class DurationBook:
    """Everything one run measured."""

    tests: dict[str, TestTime] = field(default_factory=dict)
    scopes: dict[str, ScopeCost] = field(default_factory=dict)

    def add_phase(self, nodeid: str, when: str, own: float) -> None:
        entry = self.tests.setdefault(nodeid, TestTime())
        setattr(entry, when, getattr(entry, when) + max(own, 0.0))

    def add_scope(self, scope: str, fixture: str, seconds: float) -> None:
        cost = self.scopes.setdefault(scope, ScopeCost())
        cost.fixtures[fixture] = cost.fixtures.get(fixture, 0.0) + seconds

    def file_entries(self) -> dict[str, float]:
        """What goes into the durations file: each test's own total, each module's/class's fixture setup."""
        entries = {nodeid: round(t.total, 6) for nodeid, t in self.tests.items()}
        for scope, cost in self.scopes.items():
            if scope != SESSION:
                setup = sum(s for name, s in cost.fixtures.items() if name.endswith("(setup)"))
                entries[scope] = round(setup, 6)
        return entries

    def slowest(self, count: int) -> list[str]:
        """Lines of the slowest-tests table, then what was billed to shared scopes."""
        if not self.tests:
            return []
        rows = sorted(self.tests.items(), key=lambda kv: (-kv[1].total, kv[0]))[:count]
        lines = [f"{'total':>9} {'setup':>9} {'call':>9} {'teardown':>9}  test"]
        for nodeid, t in rows:
            lines.append(f"{t.total:9.3f} {t.setup:9.3f} {t.call:9.3f} {t.teardown:9.3f}  {nodeid}")
        shared = sorted(self.scopes.items(), key=lambda kv: -kv[1].total)
        if shared:
            lines.append("billed to shared scopes, not to the first test that needed them:")
            for scope, cost in shared[:count]:
                top = sorted(cost.fixtures.items(), key=lambda kv: -kv[1])[:4]
                detail = ", ".join(f"{name} {sec:.3f}s" for name, sec in top)
                lines.append(f"{cost.total:9.3f}  {scope}: {detail}")
        return lines


def read_durations(path: Path) -> dict[str, float]:
    """A durations file (pytest-split format; its older list-of-pairs form too); {} when absent."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError(f"{path} is not a durations file (JSON object of test id -> seconds): {exc}") from exc
    if isinstance(data, list):
        data = dict(data)
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not a durations file (JSON object of test id -> seconds).")
    return {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float))}


def write_durations(path: Path, durations: Mapping[str, float]) -> None:
    """Write atomically, sorted, the way pytest-split writes it (so diffs stay small)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(dict(durations), sort_keys=True, indent=4) + "\n", encoding="utf-8")
    tmp.replace(path)


def merge_durations(base: Mapping[str, float], updates: Iterable[Mapping[str, float]], *,
                    prune: bool = False) -> dict[str, float]:
    """Overlay newer measurements (e.g. each CI shard's file) on ``base``.

    A test measured in an update takes the update's value (the last update wins). With ``prune``, ids
    that no update measured are dropped (tests that were deleted or renamed).
    """
    merged: dict[str, float] = {} if prune else dict(base)
    for update in updates:
        merged.update(update)
    return merged
