"""Fuzzing the admin API and the templating: whatever arrives, the answer is never a Python traceback.

Seeded, so a failure replays: the seed and the offending input are in the assertion message. Bad input
gets a 4xx from the admin API or a 500 naming the template's problem; a 500 from our own catch-all
("testbed stub server error") or an entry in ``server.errors`` is a bug.
"""

from __future__ import annotations

import json
import random
from typing import Any

import httpx
import pytest

from testbed.stubs import StubServer
from testbed.stubs.template_helpers import HELPERS

ATOMS = [
    "request.body", "request.path", "request.query.a", "request.headers.X", "'x'", "'{\"a\":[1,2]}'", "1",
    "-2", "3.5", "true", "null", "(array 1 2)", "'$.a'", "'$[?(@.a > 1)]'", "'yyyy-MM-dd'", "this", "@index",
    "../x", "'<a><b>1</b></a>'", "'/a/b'", "(parseDate '2024-01-01T00:00:00Z')", "''", "'%s %d'", "(range 1 3)",
    "'[1,2]'",
]  # fmt: skip
HASHES = [
    "format='x'", "default='d'", "size=3", "offset='1 days'", "timezone='UTC'", "position=1", "length=5",
    "type='UUID'", "decode=true", "maxItems=1", "jsonPath='$'", "flatten=true", "count=2", "removeNulls=true",
    "lower=1", "upper=3",
]  # fmt: skip
BROKEN = ["{{", "}}", "{{{x}}", "{{#if}}", "{{/each}}", "{{else}}", "{{> p}}", "{{!--", "{{a b=}}", "{{(}}", "{{)}}"]
KEYS = [
    "request", "response", "url", "urlPath", "method", "status", "body", "jsonBody", "headers", "equalTo",
    "matchesJsonPath", "bodyPatterns", "priority", "scenarioName", "metadata", "expression", "queryParameters",
    "fixedDelayMilliseconds", "delayDistribution", "fault", "proxyBaseUrl", "transformers", "id", "x",
]  # fmt: skip
ADMIN_POSTS = [
    "/__admin/mappings", "/__admin/requests/count", "/__admin/requests/find", "/__admin/near-misses/request",
    "/__admin/near-misses/request-pattern", "/__admin/mappings/find-by-metadata", "/__admin/mappings/import",
    "/__admin/recordings/snapshot", "/__admin/requests/remove", "/__admin/mappings/remove",
]  # fmt: skip


class Fuzzer:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)
        self.helpers = sorted(HELPERS)

    def expr(self, depth: int = 0) -> str:
        r = self.r
        parts = [r.choice(self.helpers)]
        parts += [
            r.choice(ATOMS) if depth > 1 or r.random() < 0.7 else f"({self.expr(depth + 1)})"
            for _ in range(r.randint(0, 3))
        ]
        parts += [r.choice(HASHES) for _ in range(r.randint(0, 2))]
        return " ".join(parts)

    def template(self) -> str:
        r = self.r
        out = []
        for _ in range(r.randint(1, 4)):
            k = r.random()
            if k < 0.5:
                out.append("{{" + self.expr() + "}}")
            elif k < 0.8:
                block = r.choice(["if", "each", "with", "unless", "assign", "parseJson", "arrayJoin", "jsonMerge"])
                args = " ".join(r.choice(ATOMS) for _ in range(r.randint(0, 2)))
                out.append(f"{{{{#{block} {args}}}}}x{{{{this}}}}{{{{else}}}}y{{{{/{block}}}}}")
            else:
                out.append(r.choice(BROKEN))
        return "".join(out)

    def json_value(self, depth: int = 0) -> Any:
        r = self.r
        k = r.random()
        if depth > 3 or k < 0.3:
            return r.choice([1, -1, 0.5, "s", True, None, "", "$.a", "{{x}}", [], {}])
        if k < 0.6:
            return [self.json_value(depth + 1) for _ in range(r.randint(0, 3))]
        return {r.choice(KEYS): self.json_value(depth + 1) for _ in range(r.randint(0, 4))}


def _is_our_crash(response: httpx.Response) -> bool:
    return "Traceback" in response.text or "testbed stub server error" in response.text


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_no_input_makes_a_traceback(seed: int) -> None:
    fuzz = Fuzzer(seed)
    with StubServer() as server, httpx.Client(base_url=server.url, timeout=10) as client:
        for i in range(120):
            template = fuzz.template()
            mapping = {
                "request": {"urlPath": f"/f{i}"},
                "response": {
                    "body": template,
                    "headers": {"X-T": template[:40]},
                    "transformers": ["response-template"],
                },
            }
            added = client.post("/__admin/mappings", json=mapping)
            served = client.post(f"/f{i}?a=1&a=2", headers={"X": "h"}, content=b'{"a": [1, 2, {"b": 3}]}')
            for response in (added, served):
                assert not _is_our_crash(response), f"seed {seed}, template {template!r}: {response.text[:500]}"
            path, body = fuzz.r.choice(ADMIN_POSTS), fuzz.json_value()
            answer = client.post(path, json=body)
            assert answer.status_code < 500, f"seed {seed}, POST {path} {json.dumps(body)[:300]}: {answer.text[:500]}"
            state = client.put("/__admin/scenarios/x/state", json=fuzz.json_value())
            assert state.status_code < 500, state.text[:500]
        for query in (
            "/__admin/mappings?limit=x",
            "/__admin/requests?since=zz&limit=-1",
            "/__admin/mappings?offset=-5",
        ):
            assert client.get(query).status_code < 500, query
        assert server.errors == []
