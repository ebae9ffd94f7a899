"""Near misses: the stubs closest to a request that matched none, and the diff tables that explain why."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from testbed.stubs.mapping import StubMapping
from testbed.stubs.matching import FieldResult, MatchResult, RequestPattern
from testbed.stubs.request import Request
from testbed.stubs.scenarios import Scenarios

NEAR_MISS_COUNT = 3
_WIDTH = 58


@dataclass(frozen=True, eq=False)
class NearMiss:
    """A request and a stub (or a request pattern) that almost matched it."""

    request: Request
    result: MatchResult
    stub: StubMapping | None = None
    pattern: RequestPattern | None = None

    @property
    def distance(self) -> float:
        return self.result.distance

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"request": self.request.to_json()}
        if self.stub is not None:
            out["stubMapping"] = self.stub.to_json()
        if self.pattern is not None:
            out["requestPattern"] = self.pattern.to_json()
        out["matchResult"] = {"distance": round(self.distance, 6), "diffDescriptions": [], "subEvents": []}
        return out


def near_misses_for_request(
    request: Request,
    stubs: Iterable[StubMapping],
    limit: int = NEAR_MISS_COUNT,
    scenarios: Scenarios | None = None,
) -> list[NearMiss]:
    """The ``limit`` stubs closest to ``request``, closest first (a scenario in another state counts)."""
    misses = []
    for stub in stubs:
        result = stub.request.evaluate(request)
        if scenarios is not None and stub.scenario_name is not None and not scenarios.allows(stub):
            name = stub.scenario_name
            row = FieldResult(
                "scenario",
                f"[Scenario '{name}' state: {stub.required_scenario_state}]",
                f"[Scenario '{name}' state: {scenarios.state(name)}]",
                1.0,
            )
            result = MatchResult((*result.fields, row))
        misses.append(NearMiss(request, result, stub=stub))
    misses.sort(key=lambda m: m.distance)
    return misses[:limit]


def near_misses_for_pattern(
    pattern: RequestPattern, requests: Iterable[Request], limit: int = NEAR_MISS_COUNT
) -> list[NearMiss]:
    """The ``limit`` requests closest to ``pattern``, closest first."""
    misses = [NearMiss(r, pattern.evaluate(r), pattern=pattern) for r in requests]
    misses.sort(key=lambda m: m.distance)
    return misses[:limit]


def _lines(text: str) -> list[str]:
    out: list[str] = []
    for line in text.splitlines() or [""]:
        while len(line) > _WIDTH:
            out.append(line[:_WIDTH])
            line = line[_WIDTH:]
        out.append(line)
    return out


def _pretty_body(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2)
    except ValueError:
        return text


def not_matched_table(request: Request, miss: NearMiss | None) -> str:
    """The text/plain body of a 404 for an unmatched request: WireMock's side-by-side diff table."""
    title = "Request was not matched"
    rule = "-" * (2 * _WIDTH + 1)
    out = [
        "",
        title.center(2 * _WIDTH + 1).rstrip(),
        ("=" * len(title)).center(2 * _WIDTH + 1).rstrip(),
        "",
        rule,
        f"| {'Closest stub':<{_WIDTH - 2}}| {'Request':<{_WIDTH - 2}}|",
        rule,
        f"{'':<{_WIDTH}}|",
    ]
    if miss is None or miss.stub is None:
        return "No response could be served as there are no stub mappings in this WireMock instance."
    out.append(f"{miss.stub.label:<{_WIDTH}}|")
    out.append(f"{'':<{_WIDTH}}|")
    for row in miss.result.fields:
        expected, actual = row.expected, row.actual
        if row.label == "body":
            actual = _pretty_body(actual)
        left, right = _lines(expected), _lines(actual)
        for i in range(max(len(left), len(right))):
            line = f"{left[i] if i < len(left) else '':<{_WIDTH}}| {right[i] if i < len(right) else ''}"
            if i == 0 and not row.matched:
                line = f"{line:<{2 * _WIDTH - 5}}<<<<< {row.label.capitalize()} does not match"
            out.append(line.rstrip())
    out += [f"{'':<{_WIDTH}}|", rule, ""]
    return "\n".join(out)


def body_diff(expected: str, actual: str) -> str:
    """A unified diff of two bodies, pretty-printing JSON first so the diff is per field."""
    exp, act = _pretty_body(expected), _pretty_body(actual)
    diff = difflib.unified_diff(
        exp.splitlines(), act.splitlines(), "expected (stub)", "actual (request)", lineterm=""
    )
    return "\n".join(diff)


def explain(request: Request, misses: Sequence[NearMiss]) -> str:
    """A readable report for a test failure: each close stub with a per-field match/mismatch table."""
    head = f"{request.method} {request.url}"
    if not misses:
        return f"  {head}\n    (no stubs registered)"
    out = [f"  {head}"]
    for miss in misses:
        if miss.stub is not None:
            out.append(f"    closest stub {miss.stub.label!r} (distance {miss.distance:.2f}):")
        else:
            out.append(f"    against the expected pattern (distance {miss.distance:.2f}):")
        for row in miss.result.fields:
            mark = "✓" if row.matched else "✗"
            actual = (
                row.actual
                if row.label != "body"
                else (row.actual[:80] + ("..." if len(row.actual) > 80 else ""))
            )
            expected = " ".join(row.expected.split())
            if len(expected) > 80:
                expected = expected[:77] + "..."
            out.append(f"      {mark} {row.label:<22} expected {expected}  got {actual!s}".rstrip())
            if row.label == "body" and not row.matched and row.expected.startswith("[equalToJson]"):
                diff = body_diff(
                    row.expected.split("] ", 1)[-1] if row.expected.startswith("[") else row.expected,
                    request.body_text,
                )
                out += ["        " + line for line in diff.splitlines()]
    return "\n".join(out)
