"""Near misses: the stubs closest to a request that matched none, and the diff tables that explain why."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from testbed.stubs import bounded_json
from testbed.stubs.mapping import StubMapping
from testbed.stubs.matching import FieldResult, MatchResult, RequestPattern
from testbed.stubs.request import Request
from testbed.stubs.scenarios import Scenarios

NEAR_MISS_COUNT = 3
_WIDTH = 58  # where long values wrap
_COL = 59  # the left column, as WireMock lays it out
_MARK = 113  # the column of the <<<<< markers


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
        return json.dumps(bounded_json.loads(text), indent=2)
    except ValueError:
        return text


def _split_op(pattern_text: str) -> tuple[str | None, str]:
    """``"[contains] x"`` -> ("contains", "x"); an equalTo shows as the bare value -> (None, value)."""
    if pattern_text.startswith("[") and "] " in pattern_text:
        op, _, value = pattern_text[1:].partition("] ")
        return op, value
    return None, pattern_text


def _jackson(text: str) -> str:
    from testbed.stubs.template_helpers import jackson_pretty

    try:
        return jackson_pretty(bounded_json.loads(text))
    except ValueError:
        return text


class _Table:
    """WireMock's two-column layout: the stub on the left, the request on the right, markers far right."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def blank(self) -> None:
        self.lines.append(f"{'':<{_COL}}|")

    def row(self, left: str, right: str, marker: str | None = None) -> None:
        lefts, rights = _lines(left), _lines(right)
        for i in range(max(len(lefts), len(rights))):
            right_text = rights[i] if i < len(rights) else ""
            line = f"{lefts[i] if i < len(lefts) else '':<{_COL}}|" + (f" {right_text}" if right_text else "")
            if i == 0 and marker:
                line = f"{line:<{_MARK}}<<<<< {marker}"
            self.lines.append(line)


def not_matched_table(request: Request, miss: NearMiss | None) -> str:
    """The text/plain body of a 404 for an unmatched request: WireMock's side-by-side diff table."""
    if miss is None or miss.stub is None:
        return "No response could be served as there are no stub mappings in this WireMock instance."
    stub, pattern = miss.stub, miss.stub.request
    title = "Request was not matched"
    rule = "-" * (2 * _COL + 1)
    table = _Table()
    table.blank()
    if stub.name:
        table.row(stub.name, "")
        table.blank()
    method_ok = pattern.method in ("ANY", request.method)
    table.row(pattern.method, request.method, None if method_ok else "HTTP method does not match")
    table.row(
        pattern.url.describe() if pattern.url.kind else "[any URL]",
        request.url,
        None if pattern.url.matches(request) else "URL does not match",
    )
    table.blank()
    params = pattern.url.path_parameters(request)
    groups = [
        [
            (
                f"Path parameter: {k} " + (f"= {v}" if op is None else f"[{op}] {v}"),
                params.get(k) or "",
                None if vp.matches(params.get(k)) else "Path parameter does not match",
            )
            for k, vp in pattern.path_parameters.items()
            for op, v in [_split_op(vp.describe())]
        ],
        [
            (
                f"{k}: {v}" if op is None else f"{k} [{op}] : {v}",
                f"{k}: {', '.join(request.header_values(k))}" if request.header_values(k) else "",
                None
                if mv.matches(request.header_values(k))
                else ("Header does not match" if request.header_values(k) else "Header is not present"),
            )
            for k, mv in pattern.headers.items()
            for op, v in [_split_op(mv.describe())]
        ],
        [
            (
                f"Query: {k} " + (f"= {v}" if op is None else f"[{op}] {v}"),
                f"{k}: {', '.join(request.query.get(k, []))}" if request.query.get(k) else "",
                None if mv.matches(request.query.get(k, [])) else "Query does not match",
            )
            for k, mv in pattern.query.items()
            for op, v in [_split_op(mv.describe())]
        ],
        [
            (
                f"Cookie: {k}={v}" if op is None else f"Cookie: {k} [{op}] {v}",
                ", ".join(request.cookies.get(k, [])),
                None
                if any(vp.matches(c) for c in request.cookies.get(k, []))
                or (not request.cookies.get(k) and vp.matches(None))
                else "Cookie does not match",
            )
            for k, vp in pattern.cookies.items()
            for op, v in [_split_op(vp.describe())]
        ],
        [
            (
                f"Form: {k} " + (f"= {v}" if op is None else f"[{op}] {v}"),
                f"{k}: {', '.join(request.form.get(k, []))}" if request.form.get(k) else "",
                None if mv.matches(request.form.get(k, [])) else "Form data does not match",
            )
            for k, mv in pattern.form.items()
            for op, v in [_split_op(mv.describe())]
        ],
    ]
    for group in groups:
        if group:
            for left, right, marker in group:
                table.row(left, right, marker)
            table.blank()
    for row in miss.result.fields:
        if row.label == "body":
            op, value = _split_op(row.expected)
            marker = None if row.matched else "Body does not match"
            if op in ("matchesJsonPath", "matchesXPath"):
                table.row(value, request.body_text, marker)
                continue
            table.row(f"[{op or 'equalTo'}]", "", marker)
            if op == "equalToJson":
                table.row(_jackson(value), _jackson(request.body_text))
            else:
                table.row(value, request.body_text)
    scenario = next((f for f in miss.result.fields if f.label == "scenario"), None)
    if scenario is not None:
        table.row(scenario.expected, scenario.actual, "Scenario does not match")
    table.blank()
    head = [
        "",
        " " * 47 + title,
        " " * 47 + "=" * len(title),
        "",
        rule,
        f"| {'Closest stub':<{_COL - 2}}| {'Request':<{_COL - 2}}|",
        rule,
    ]
    return "\n".join([*head, *table.lines, rule, ""])


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
