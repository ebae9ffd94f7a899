"""The wide differential: run generated cases against the WireMock jar and testbed, compare what a client sees.

Cases come from ``differential_cases.generate()``. Two kinds:
  shared    every shared case's mappings are added through the admin API in order (as a user migrating a
            mapping folder would), then every step runs in order; each case uses its own URL prefix
  isolated  per case: POST /__admin/reset, add its mappings, run its steps (admin API, journal, scenarios)

A step is a request (``method``, ``path``, optional ``headers`` / ``body`` / ``json``) and a ``compare`` mode:
  exact    status, body and the response headers the stub sets (plus Content-Type)
  status   status and Content-Type
  shape    status, and the body with digits and lower-case letters masked as x, upper-case as X (random
           values, dates of now: the same format, not the same value)
  json     status and the parsed JSON body, with values that are per-run (ids, dates, timings) masked
  regex:R  status, and whether the body fully matches R
  fault    the kind of error the client gets (or the status if none)
A step may carry ``skip_on`` (no): everything generated is compared.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

# Response headers that differ by server and not by stub (framing, identity of the server).
_IGNORED_HEADERS = frozenset(
    {
        "date",
        "server",
        "transfer-encoding",
        "content-length",
        "connection",
        "keep-alive",
        "vary",
        "content-encoding",  # WireMock gzips when the client accepts it; clients decode it either way
        "matched-stub-id",
        "matched-stub-name",
    }
)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
# Keys of admin JSON whose values are per run: ids minted by the server, clocks, timings.
_VOLATILE_KEYS = frozenset(
    {
        "id",
        "uuid",
        "loggedDate",
        "loggedDateString",
        "timing",
        "uptimeInSeconds",
        "timestamp",
        "port",
        "absoluteUrl",
        "bodyAsBase64",
        "insertionIndex",
        "clientIp",
        "host",
        "requestId",
        # near-miss distances are WireMock's own heuristic figures; the order of the near misses is compared
        "distance",
        "timeOffsetNanos",
        "Host",  # the server's own port
        # a 422's detail is prose (Jackson's message there, one naming the fix here); status, code, title and
        # the JSON pointer of the field are compared
        "detail",
    }
)


def mask(text: str) -> str:
    """The shape of a value: digits and lower-case letters -> x, upper-case -> X (random values mix
    letters and digits at random; a date keeps its separators and its zone's form)."""
    out = re.sub(r"[0-9a-z]", "x", text)
    return re.sub(r"[A-Z]", "X", out)


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("<volatile>" if k in _VOLATILE_KEYS else _scrub(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, str):
        return _UUID.sub("<uuid>", value)
    return value


@dataclass
class Outcome:
    status: int | None
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None


def send(client: httpx.Client, step: dict[str, Any]) -> Outcome:
    kw: dict[str, Any] = {"headers": step.get("headers")}
    if "json" in step:
        kw["json"] = step["json"]
    elif "body" in step:
        body = step["body"]
        kw["content"] = body.encode() if isinstance(body, str) else body
    try:
        r = client.request(step["method"], step["path"], **kw)
    except httpx.HTTPError as exc:
        return Outcome(None, error=type(exc).__name__)
    headers = sorted((k.lower(), v) for k, v in r.headers.multi_items() if k.lower() not in _IGNORED_HEADERS)
    return Outcome(r.status_code, r.content, headers)


def view(outcome: Outcome, compare: str) -> Any:
    """The part of an outcome that ``compare`` says must be the same on both servers."""
    if outcome.error is not None:
        return {"error": "fault" if compare == "fault" else outcome.error}
    if compare == "fault":
        return {"status": outcome.status}
    if outcome.status == 500:
        # A failed template: WireMock's body is a dump of Java exceptions, testbed's names the helper; the
        # status is what a client acts on.
        return {"status": 500}
    ctype = [v.replace(" ", "").lower() for k, v in outcome.headers if k == "content-type"]
    if compare == "status":
        return {"status": outcome.status, "content-type": ctype}
    text = outcome.body.decode("utf-8", "replace")
    if compare == "exact":
        return {"status": outcome.status, "body": text, "headers": outcome.headers}
    if compare == "shape":
        return {"status": outcome.status, "body": mask(text), "headers": ctype}
    if compare.startswith("regex:"):
        return {"status": outcome.status, "matches": re.fullmatch(compare[6:], text, re.DOTALL) is not None}
    if compare == "json":
        try:
            body: Any = json.loads(text) if text.strip() else None
        except ValueError:
            body = {"not json": text[:200]}
        return {"status": outcome.status, "json": _scrub(body)}
    raise AssertionError(f"unknown compare mode {compare!r}")


def prepare(case: dict[str, Any]) -> list[dict[str, Any]]:
    """The case's mappings with deterministic ids (the same on both servers)."""
    out = []
    for i, mapping in enumerate(case.get("mappings", [])):
        mapping = json.loads(json.dumps(mapping))
        if "id" not in mapping and not case.get("keep_ids_out"):
            mapping["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{case['id']}/{i}"))
        out.append(mapping)
    return out


@dataclass
class StepResult:
    case: str
    step: dict[str, Any]
    expected: Any
    actual: Any

    @property
    def same(self) -> bool:
        return bool(self.expected == self.actual)

    def describe(self) -> str:
        s = self.step
        return (
            f"[{self.case}] {s['method']} {s['path']} ({s['compare']})\n"
            f"    wiremock: {json.dumps(self.expected, default=str)[:600]}\n"
            f"    testbed:  {json.dumps(self.actual, default=str)[:600]}"
        )


def _load(client: httpx.Client, mappings: Iterable[dict[str, Any]]) -> list[Any]:
    """Add mappings one by one; the answers (201 or a 422) are compared too."""
    answers = []
    for mapping in mappings:
        r = client.post("/__admin/mappings", json=mapping)
        answers.append(r.status_code)
    return answers


def run_server(base_url: str, cases: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Every case's views on one server, keyed by case id (the load answers first)."""
    out: dict[str, list[Any]] = {}
    shared = [c for c in cases if c.get("kind", "shared") == "shared"]
    isolated = [c for c in cases if c.get("kind") == "isolated"]
    with httpx.Client(base_url=base_url, timeout=20) as client:
        client.post("/__admin/reset")
        client.delete("/__admin/mappings")
        loads = {c["id"]: _load(client, prepare(c)) for c in shared}
        for case in shared:
            out[case["id"]] = _views(client, case, loads[case["id"]])
        for case in isolated:
            client.post("/__admin/reset")
            client.delete("/__admin/mappings")
            out[case["id"]] = _views(client, case, _load(client, prepare(case)))
    return out


def _views(client: httpx.Client, case: dict[str, Any], load: list[Any]) -> list[Any]:
    """One view per step; the mapping load answers ride on the first (a refused stub counts once)."""
    views = [view(send(client, step), step["compare"]) for step in case["steps"]]
    if not views:
        return [{"load": load}]
    views[0] = {"load": load, **views[0]}
    return views


def steps_of(case: dict[str, Any]) -> list[dict[str, Any]]:
    if case["steps"]:
        return list(case["steps"])
    return [{"method": "POST", "path": "/__admin/mappings", "compare": "status"}]


def compare(
    cases: list[dict[str, Any]], wiremock: dict[str, list[Any]], testbed: dict[str, list[Any]]
) -> list[StepResult]:
    results = []
    for case in cases:
        for step, exp, act in zip(steps_of(case), wiremock[case["id"]], testbed[case["id"]], strict=True):
            results.append(StepResult(case["id"], step, exp, act))
    return results
