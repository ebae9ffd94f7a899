"""Conformance: the same mappings and requests against the real WireMock 3.13.2 jar and testbed."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import pytest

from testbed.stubs import StubServer

from .conformance_cases import CASES
from .conftest import WireMockProcess

HEADER_PREFIXES = ("x-", "matched-stub-")


def _prepare(case: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for i, mapping in enumerate(case["mappings"]):
        mapping = json.loads(json.dumps(mapping))
        mapping.setdefault("id", str(uuid.uuid5(uuid.NAMESPACE_URL, f"{case['id']}/{i}")))
        mapping.setdefault("name", f"{case['id']}-{i}")
        out.append(mapping)
    return out


def _send(client: httpx.Client, step: dict[str, Any]) -> dict[str, Any]:
    kw: dict[str, Any] = {"headers": step.get("headers")}
    if "json" in step:
        kw["json"] = step["json"]
    elif "body" in step:
        kw["content"] = step["body"].encode()
    elif "content" in step:
        kw["content"] = step["content"]
    try:
        r = client.request(step["method"], step["path"], **kw)
    except httpx.HTTPError as exc:
        return {"error": type(exc).__name__}
    return {
        "status": r.status_code,
        "reason": r.reason_phrase,
        "body": r.content,
        "headers": sorted(
            (k.lower(), v)
            for k, v in r.headers.multi_items()
            if k.lower() == "content-type" or k.lower().startswith(HEADER_PREFIXES)
        ),
    }


def _dig(data: Any, key: str) -> Any:
    length = key.endswith("#len")
    key = key.removesuffix("#len")
    for part in key.split("."):
        if isinstance(data, list):
            data = data[int(part)] if int(part) < len(data) else None
        elif isinstance(data, dict):
            data = data.get(part)
        else:
            return None
    return len(data) if length and data is not None else data


def _view(result: dict[str, Any], compare: str) -> Any:
    """The part of a response that ``compare`` says must be the same on both servers."""
    if "error" in result:
        return {"error": result["error"]}
    if compare == "fault":
        return {"status": result["status"]}
    ctype = [v for k, v in result["headers"] if k == "content-type"]
    if compare == "status":
        return {"status": result["status"], "content-type": ctype}
    if compare in ("exact", "reason"):
        view = {"status": result["status"], "body": result["body"], "headers": result["headers"]}
        if compare == "reason":
            view["reason"] = result["reason"]
        return view
    if compare.startswith("regex:"):
        text = result["body"].decode()
        return {"status": result["status"], "matches": re.fullmatch(compare[6:], text) is not None}
    body = json.loads(result["body"]) if result["body"] else None
    if compare == "json":
        return {"status": result["status"], "json": body}
    assert compare.startswith("json:"), compare
    return {"status": result["status"], compare: _dig(body, compare[5:])}


def _run(base_url: str, case: dict[str, Any], mappings: list[dict[str, Any]]) -> list[Any]:
    with httpx.Client(base_url=base_url, timeout=10) as admin:
        assert admin.post("/__admin/reset").status_code == 200
        for mapping in mappings:
            r = admin.post("/__admin/mappings", json=mapping)
            assert r.status_code == 201, r.text
    views = []
    with httpx.Client(base_url=base_url, timeout=10) as client:
        for step in case["steps"]:
            views.append(_view(_send(client, step), step["compare"]))
    return views


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_same_as_wiremock(case: dict[str, Any], wiremock: WireMockProcess, stub_server: StubServer) -> None:
    mappings = _prepare(case)
    expected = _run(wiremock.url, case, mappings)
    actual = _run(stub_server.url, case, mappings)
    for step, exp, act in zip(case["steps"], expected, actual):
        assert act == exp, f"{step['method']} {step['path']} ({step['compare']})"


def test_the_table_covers_the_grammar() -> None:
    text = json.dumps(CASES, default=repr)
    for operator in (
        "equalTo",
        "caseInsensitive",
        "contains",
        "doesNotContain",
        "matches",
        "doesNotMatch",
        "absent",
        "anything",
        "not",
        "and",
        "or",
        "equalToJson",
        "ignoreArrayOrder",
        "ignoreExtraElements",
        "json-unit.any-string",
        "matchesJsonPath",
        "matchesJsonSchema",
        "equalToXml",
        "matchesXPath",
        "before",
        "after",
        "equalToDateTime",
        "binaryEqualTo",
        "hasExactly",
        "includes",
        "urlPathTemplate",
        "pathParameters",
        "cookies",
        "basicAuth",
        "formParameters",
        "multipartPatterns",
        "priority",
        "scenarioName",
        "bodyFileName",
        "base64Body",
        "jsonBody",
        "chunkedDribbleDelay",
        "delayDistribution",
        "response-template",
    ):
        assert f'"{operator}"' in text or operator in text, operator
    assert len(CASES) >= 60


def test_proxy_same_as_wiremock(wiremock: WireMockProcess, stub_server: StubServer) -> None:
    with StubServer() as upstream:
        upstream.add_mapping(
            {
                "request": {"method": "POST", "urlPath": "/api/items"},
                "response": {
                    "status": 201,
                    "body": "created upstream",
                    "headers": {"X-Upstream": "yes", "Content-Type": "text/plain"},
                },
            }
        )
        case = {
            "id": "proxy",
            "steps": [
                {"method": "POST", "path": "/svc/api/items?x=1", "compare": "exact", "body": "payload"},
                {"method": "GET", "path": "/svc/api/missing", "compare": "status"},
            ],
        }
        mappings = _prepare(
            {
                "id": "proxy",
                "mappings": [
                    {
                        "request": {"urlPathPattern": "/svc/.*"},
                        "response": {"proxyBaseUrl": upstream.url, "proxyUrlPrefixToRemove": "/svc"},
                    }
                ],
            }
        )
        expected = _run(wiremock.url, case, mappings)
        actual = _run(stub_server.url, case, mappings)
        assert actual == expected
        bodies = [e.request.body for e in upstream.events() if e.was_matched]
        assert bodies == [b"payload", b"payload"]  # once through each server


def _recorded(base_url: str, upstream: str) -> tuple[list[Any], list[Any]]:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        client.post("/__admin/reset")
        statuses = [
            client.post("/__admin/recordings/stop").json(),
            client.get("/__admin/recordings/status").json(),
        ]
        start = {"targetBaseUrl": upstream, "persist": False, "captureHeaders": {"X-Tenant": {}}}
        assert client.post("/__admin/recordings/start", json=start).json() == {}
        statuses.append(client.get("/__admin/recordings/status").json())
        client.get("/api/items?x=1", headers={"X-Tenant": "t1"})
        client.post("/api/items", json={"a": 1})
        client.get("/api/items?x=1", headers={"X-Tenant": "t1"})
        client.put("/api/raw", content=b"plain text")
        client.get("/")
        stopped = client.post("/__admin/recordings/stop").json()["mappings"]
        statuses.append(client.get("/__admin/recordings/status").json())
        replay = [
            client.get("/api/items?x=1", headers={"X-Tenant": "t1"}).text,
            client.get("/api/items?x=1", headers={"X-Tenant": "t1"}).status_code,
        ]
    for m in stopped:
        for key in ("id", "uuid"):
            m.pop(key)
        m.get("response", {}).get("headers", {}).pop("Matched-Stub-Name", None)
    return [statuses, replay], stopped


def test_recording_same_as_wiremock(wiremock: WireMockProcess, stub_server: StubServer) -> None:
    with StubServer() as upstream:
        upstream.add_mapping(
            {
                "request": {"method": "ANY", "urlPathPattern": "/.*"},
                "response": {
                    "status": 200,
                    "jsonBody": {"hello": "world"},
                    "headers": {"Content-Type": "application/json", "X-Up": "1"},
                },
            }
        )
        expected = _recorded(wiremock.url, upstream.url)
        actual = _recorded(stub_server.url, upstream.url)
    assert actual[0] == expected[0]
    assert actual[1] == expected[1]


def _webhook_seen(base_url: str, receiver: StubServer, mapping: dict[str, Any]) -> dict[str, Any]:
    import time

    receiver.reset()
    receiver.add_mapping({"request": {"method": "ANY"}, "response": {"status": 204}})
    with httpx.Client(base_url=base_url, timeout=10) as client:
        client.post("/__admin/reset")
        assert client.post("/__admin/mappings", json=mapping).status_code == 201
        served = client.post("/charge", json={"id": "ch_1", "amount": 5})
    deadline = time.monotonic() + 10
    while not receiver.events() and time.monotonic() < deadline:
        time.sleep(0.02)
    (event,) = receiver.events()
    r = event.request
    return {
        "status": served.status_code,
        "method": r.method,
        "url": r.url,
        "body": r.body_text,
        "content-type": r.header("content-type"),
        "x-sig": r.header("x-signature"),
    }


def test_webhook_same_as_wiremock(wiremock: WireMockProcess, stub_server: StubServer) -> None:
    with StubServer() as receiver:
        mapping = {
            "request": {"method": "POST", "urlPath": "/charge"},
            "response": {"status": 202},
            "serveEventListeners": [
                {
                    "name": "webhook",
                    "parameters": {
                        "method": "PUT",
                        "url": receiver.url + "/callbacks/{{jsonPath originalRequest.body '$.id'}}",
                        "headers": {
                            "Content-Type": "application/json",
                            "X-Signature": "sig-{{originalRequest.method}}",
                        },
                        "body": '{"id": "{{jsonPath originalRequest.body \'$.id\'}}", "status": "succeeded"}',
                        "delay": {"type": "fixed", "milliseconds": 20},
                    },
                }
            ],
        }
        expected = _webhook_seen(wiremock.url, receiver, mapping)
        actual = _webhook_seen(stub_server.url, receiver, mapping)
    assert actual == expected
    assert actual["url"] == "/callbacks/ch_1"
