"""Stub mapping parsing, request matching, priorities and near misses (no sockets)."""

from __future__ import annotations

import pytest

from testbed.stubs import InvalidStubError, Request, parse_mapping, post
from testbed.stubs.near_miss import explain, near_misses_for_request, not_matched_table
from testbed.stubs.registry import StubRegistry


def _req(method: str, url: str, body: str = "", **headers: str) -> Request:
    return Request(method, url, tuple(headers.items()), body.encode())


def test_mapping_echo_has_id_uuid_and_defaults() -> None:
    stub = parse_mapping({"request": {"urlPath": "/a"}, "response": {"body": "x"}, "$schema": "ignored"})
    echo = stub.to_json()
    assert echo["id"] == echo["uuid"] == stub.id
    assert echo["request"] == {"urlPath": "/a", "method": "ANY"}
    assert echo["response"] == {"body": "x", "status": 200}
    assert "$schema" not in echo


def test_url_kinds() -> None:
    def ok(request: dict[str, object], url: str) -> bool:
        return parse_mapping({"request": request, "response": {}}).request.matches(_req("GET", url))

    assert ok({"url": "/a?b=1"}, "/a?b=1") and not ok({"url": "/a?b=1"}, "/a")
    assert ok({"urlPath": "/a"}, "/a?b=1")
    assert ok({"urlPattern": "/a\\?b=[0-9]"}, "/a?b=1")
    assert ok({"urlPathPattern": "/a/.+"}, "/a/b?c") and not ok({"urlPathPattern": "/a/.+"}, "/a/")
    assert ok({"urlPathTemplate": "/o/{id}"}, "/o/7") and not ok({"urlPathTemplate": "/o/{id}"}, "/o/7/x")


def test_priority_then_newest() -> None:
    registry = StubRegistry()
    low = parse_mapping({"priority": 9, "request": {"urlPath": "/a"}, "response": {"body": "low"}})
    old = parse_mapping({"request": {"urlPath": "/a"}, "response": {"body": "old"}})
    new = parse_mapping({"request": {"urlPath": "/a"}, "response": {"body": "new"}})
    registry.add_many([low, old, new])
    assert registry.match(_req("GET", "/a")) is new
    registry.remove(new.id)
    assert registry.match(_req("GET", "/a")) is old
    top = parse_mapping({"priority": 1, "request": {"urlPath": "/a"}, "response": {}})
    registry.add(top)
    registry.add(parse_mapping({"request": {"urlPath": "/a"}, "response": {}}))
    assert registry.match(_req("GET", "/a")) is top


def test_scenarios_gate_and_move() -> None:
    registry = StubRegistry()
    first = parse_mapping(
        {
            "scenarioName": "s",
            "requiredScenarioState": "Started",
            "newScenarioState": "b",
            "request": {"urlPath": "/s"},
            "response": {},
        }
    )
    second = parse_mapping(
        {"scenarioName": "s", "requiredScenarioState": "b", "request": {"urlPath": "/s"}, "response": {}}
    )
    registry.add_many([first, second])
    assert registry.match(_req("GET", "/s")) is first
    registry.scenarios.advance(first)
    assert registry.match(_req("GET", "/s")) is second
    assert registry.scenarios.to_json(registry.in_insertion_order())[0]["possibleStates"] == ["Started", "b"]


def test_near_miss_ranks_and_explains() -> None:
    stubs = [
        parse_mapping({"name": n, "request": r, "response": {}})
        for n, r in [
            (
                "charge",
                {"method": "POST", "urlPath": "/charge", "bodyPatterns": [{"equalToJson": {"amount": 5}}]},
            ),
            ("refund", {"method": "POST", "urlPath": "/refund"}),
            ("users", {"method": "GET", "urlPath": "/users"}),
        ]
    ]
    request = _req("POST", "/charge", '{"amount": 6}')
    misses = near_misses_for_request(request, stubs)
    assert [m.stub.name for m in misses if m.stub] == ["charge", "refund", "users"]
    report = explain(request, misses[:1])
    assert "✓ url" in report and "✗ body" in report and '+  "amount": 6' in report
    table = not_matched_table(request, misses[0])
    assert "Request was not matched" in table and "<<<<< Body does not match" in table


def test_builder_produces_wiremock_json() -> None:
    stub = (
        post("/v1/charge")
        .with_json({"amount": 5000})
        .with_header("Idempotency-Key", {"matches": ".+"})
        .with_query(dry_run="false")
        .will_return(201, json={"ok": True})
        .named("charge")
        .at_priority(1)
        .in_scenario("pay", when="Started", then="paid")
        .with_delay(10)
        .to_json()
    )
    assert stub == {
        "request": {
            "method": "POST",
            "urlPath": "/v1/charge",
            "bodyPatterns": [{"equalToJson": {"amount": 5000}}],
            "headers": {"Idempotency-Key": {"matches": ".+"}},
            "queryParameters": {"dry_run": {"equalTo": "false"}},
        },
        "response": {
            "status": 201,
            "jsonBody": {"ok": True},
            "headers": {"Content-Type": "application/json"},
            "fixedDelayMilliseconds": 10,
        },
        "name": "charge",
        "priority": 1,
        "scenarioName": "pay",
        "requiredScenarioState": "Started",
        "newScenarioState": "paid",
    }
    parse_mapping(stub)  # and WireMock's grammar accepts it


def test_invalid_mapping_errors() -> None:
    with pytest.raises(InvalidStubError, match="needs a request pattern"):
        parse_mapping({"response": {}})
    with pytest.raises(InvalidStubError, match="must be a UUID"):
        parse_mapping({"id": "nope", "request": {}, "response": {}})
    with pytest.raises(InvalidStubError, match="priority must be an integer"):
        parse_mapping({"priority": "high", "request": {}, "response": {}})


def test_every_public_name_resolves() -> None:
    import testbed.stubs

    for name in testbed.stubs.__all__:
        assert getattr(testbed.stubs, name) is not None
    assert testbed.stubs.equal_to("x", case_insensitive=True) == {"equalTo": "x", "caseInsensitive": True}


def test_near_miss_names_a_scenario_in_another_state() -> None:
    registry = StubRegistry()
    stub = parse_mapping(
        {
            "name": "second call",
            "scenarioName": "pay",
            "requiredScenarioState": "paid",
            "request": {"method": "GET", "urlPath": "/status"},
            "response": {},
        }
    )
    registry.add(stub)
    request = _req("GET", "/status")
    assert registry.match(request) is None
    miss = near_misses_for_request(request, registry.ordered(), scenarios=registry.scenarios)[0]
    assert [f.label for f in miss.result.fields if not f.matched] == ["scenario"]
    assert "[Scenario 'pay' state: Started]" in explain(request, [miss])
    assert "<<<<< Scenario does not match" in not_matched_table(request, miss)


def test_the_path_index_keeps_priority_and_recency() -> None:
    registry = StubRegistry()
    generic_old = parse_mapping({"request": {"urlPathPattern": "/a.*"}, "response": {"body": "generic old"}})
    exact = parse_mapping({"request": {"urlPath": "/a"}, "response": {"body": "exact"}})
    registry.add_many([generic_old, exact])
    assert registry.match(_req("GET", "/a")) is exact  # same priority: newer wins
    generic_new = parse_mapping({"request": {"urlPathPattern": "/a.*"}, "response": {"body": "generic new"}})
    registry.add(generic_new)
    assert registry.match(_req("GET", "/a")) is generic_new
    assert registry.match(_req("GET", "/ab")) is generic_new
    top = parse_mapping({"priority": 1, "request": {"url": "/a?x=1"}, "response": {}})
    registry.add(top)
    assert registry.match(_req("GET", "/a?x=1")) is top and registry.match(_req("GET", "/a")) is generic_new
    registry.remove(generic_new.id)
    registry.remove(generic_old.id)
    assert registry.match(_req("GET", "/ab")) is None
    assert registry.match(_req("GET", "/a")) is exact
    registry.clear()
    assert registry.match(_req("GET", "/a")) is None
