"""The conformance table: each case loads the same mappings into WireMock 3.13.2 and testbed, sends the same
requests to both and compares what the client sees.

A case: ``mappings`` (ids are filled in deterministically), ``steps``; a step is a request
(``method``, ``path``, optional ``headers`` / ``body`` / ``json``) plus ``compare``:
  exact    status, body, Content-Type, X-* and Matched-Stub-* headers
  status   status only (plus Content-Type)
  reason   exact plus the reason phrase
  json     status and the parsed JSON body
  json:K   status and the value at dotted key K of the JSON body (``#len`` = its length)
  regex:R  status, and both bodies fully match R
  fault    the exception the client raises (or the status if none)
"""

from __future__ import annotations

import base64
from typing import Any

Case = dict[str, Any]


def m(request: dict[str, Any], response: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"request": request, "response": response or {"status": 200, "body": "matched"}, **extra}


def get(path: str, compare: str = "exact", **kw: Any) -> dict[str, Any]:
    return {"method": "GET", "path": path, "compare": compare, **kw}


def post(path: str, compare: str = "exact", **kw: Any) -> dict[str, Any]:
    return {"method": "POST", "path": path, "compare": compare, **kw}


def req(method: str, path: str, compare: str = "exact", **kw: Any) -> dict[str, Any]:
    return {"method": method, "path": path, "compare": compare, **kw}


def one(
    name: str,
    request: dict[str, Any],
    hits: list[dict[str, Any]],
    misses: list[dict[str, Any]] = (),
    response: dict[str, Any] | None = None,
) -> Case:  # type: ignore[assignment]
    """A case with one stub, requests that must match and requests that must not."""
    return {
        "id": name,
        "mappings": [m(request, response)],
        "steps": [*hits, *[{**s, "compare": "status"} for s in misses]],
    }


XML = "<order><id>7</id><items><item sku='a'>1</item><item sku='b'>2</item></items></order>"
NS_XML = "<s:Envelope xmlns:s='http://schemas/soap'><s:Body><Ping>1</Ping></s:Body></s:Envelope>"
BASIC = "Basic " + base64.b64encode(b"user:secret").decode()
BAD_BASIC = "Basic " + base64.b64encode(b"user:wrong").decode()
MULTIPART = (
    b'--XyZ\r\nContent-Disposition: form-data; name="meta"\r\nContent-Type: application/json\r\n\r\n'
    b'{"kind": "invoice"}\r\n--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
    b"Content-Type: text/plain\r\n\r\nhello file\r\n--XyZ--\r\n"
)
MP_HEADERS = {"Content-Type": "multipart/form-data; boundary=XyZ"}

CASES: list[Case] = [
    # --- method and URL ------------------------------------------------------------------------------
    one("method-get", {"method": "GET", "urlPath": "/m"}, [get("/m")], [post("/m")]),
    one(
        "method-any",
        {"method": "ANY", "urlPath": "/any"},
        [get("/any"), req("DELETE", "/any"), req("PATCH", "/any")],
    ),
    one("method-absent-is-any", {"urlPath": "/noverb"}, [get("/noverb"), post("/noverb")]),
    one(
        "url-exact-with-query",
        {"method": "GET", "url": "/q?a=1&b=2"},
        [get("/q?a=1&b=2")],
        [get("/q?b=2&a=1"), get("/q?a=1")],
    ),
    one(
        "url-pattern",
        {"method": "GET", "urlPattern": "/re/[0-9]+(\\?.*)?"},
        [get("/re/123"), get("/re/9?x=1")],
        [get("/re/abc")],
    ),
    one(
        "url-path-ignores-query",
        {"method": "GET", "urlPath": "/p"},
        [get("/p"), get("/p?x=1")],
        [get("/p/x")],
    ),
    one(
        "url-path-pattern",
        {"method": "GET", "urlPathPattern": "/pp/[a-z]+"},
        [get("/pp/abc?z=1")],
        [get("/pp/ABC")],
    ),
    one(
        "url-path-template",
        {
            "method": "GET",
            "urlPathTemplate": "/orders/{id}/lines/{line}",
            "pathParameters": {"id": {"equalTo": "42"}, "line": {"matches": "[0-9]+"}},
        },
        [get("/orders/42/lines/3")],
        [get("/orders/43/lines/3"), get("/orders/42/lines/x"), get("/orders/42")],
    ),
    one("url-any", {"method": "GET"}, [get("/whatever/you/like?x=1")]),
    one(
        "url-path-encoded",
        {"method": "GET", "urlPath": "/files/a%20b"},
        [get("/files/a%20b", "status")],
        [get("/files/a%2Bb")],
    ),
    one(
        "url-path-decoded-in-stub",
        {"method": "GET", "urlPath": "/files/c d"},
        [get("/files/c%20d", "status")],
    ),
    one(
        "query-decoded",
        {"method": "GET", "urlPath": "/qd", "queryParameters": {"q": {"equalTo": "x y&z"}}},
        [get("/qd?q=x%20y%26z", "status"), get("/qd?q=x+y%26z", "status")],
    ),
    # --- query parameters ----------------------------------------------------------------------------
    one(
        "query-equal",
        {"method": "GET", "urlPath": "/qp", "queryParameters": {"page": {"equalTo": "2"}}},
        [get("/qp?page=2"), get("/qp?page=2&x=1")],
        [get("/qp?page=3"), get("/qp")],
    ),
    one(
        "query-absent",
        {"method": "GET", "urlPath": "/qa", "queryParameters": {"debug": {"absent": True}}},
        [get("/qa"), get("/qa?x=1")],
        [get("/qa?debug=1")],
    ),
    one(
        "query-has-exactly",
        {
            "method": "GET",
            "urlPath": "/qx",
            "queryParameters": {"id": {"hasExactly": [{"equalTo": "1"}, {"equalTo": "2"}]}},
        },
        [get("/qx?id=1&id=2"), get("/qx?id=2&id=1")],
        [get("/qx?id=1"), get("/qx?id=1&id=2&id=3")],
    ),
    one(
        "query-includes",
        {"method": "GET", "urlPath": "/qi", "queryParameters": {"id": {"includes": [{"equalTo": "1"}]}}},
        [get("/qi?id=1&id=2")],
        [get("/qi?id=2")],
    ),
    one(
        "query-matches",
        {"method": "GET", "urlPath": "/qm", "queryParameters": {"n": {"matches": "[0-9]{3}"}}},
        [get("/qm?n=123")],
        [get("/qm?n=12")],
    ),
    # --- headers and string operators ----------------------------------------------------------------
    one(
        "header-equal-case-insensitive",
        {
            "method": "GET",
            "urlPath": "/h1",
            "headers": {"X-Mode": {"equalTo": "FAST", "caseInsensitive": True}},
        },
        [get("/h1", headers={"X-Mode": "fast"}), get("/h1", headers={"x-mode": "Fast"})],
        [get("/h1", headers={"X-Mode": "slow"})],
    ),
    one(
        "header-equal-case-sensitive",
        {"method": "GET", "urlPath": "/h2", "headers": {"X-Mode": {"equalTo": "FAST"}}},
        [get("/h2", headers={"X-Mode": "FAST"})],
        [get("/h2", headers={"X-Mode": "fast"})],
    ),
    one(
        "header-contains",
        {"method": "GET", "urlPath": "/h3", "headers": {"Accept": {"contains": "json"}}},
        [get("/h3", headers={"Accept": "application/json"})],
        [get("/h3", headers={"Accept": "text/html"})],
    ),
    one(
        "header-does-not-contain",
        {"method": "GET", "urlPath": "/h4", "headers": {"X-Tags": {"doesNotContain": "beta"}}},
        [get("/h4", headers={"X-Tags": "alpha"})],
        [get("/h4", headers={"X-Tags": "alpha,beta"}), get("/h4")],
    ),
    one(
        "header-matches",
        {"method": "GET", "urlPath": "/h5", "headers": {"X-Req": {"matches": "req-[0-9a-f]{4}"}}},
        [get("/h5", headers={"X-Req": "req-00af"})],
        [get("/h5", headers={"X-Req": "req-00afz"})],
    ),
    one(
        "header-does-not-match",
        {"method": "GET", "urlPath": "/h6", "headers": {"X-Req": {"doesNotMatch": "req-.*"}}},
        [get("/h6", headers={"X-Req": "other"})],
        [get("/h6", headers={"X-Req": "req-1"}), get("/h6")],
    ),
    one(
        "header-absent",
        {"method": "GET", "urlPath": "/h7", "headers": {"X-Debug": {"absent": True}}},
        [get("/h7")],
        [get("/h7", headers={"X-Debug": "1"})],
    ),
    one(
        "header-anything",
        {"method": "GET", "urlPath": "/h8", "headers": {"X-Any": {"anything": "x"}}},
        [get("/h8"), get("/h8", headers={"X-Any": "1"})],
    ),
    one(
        "header-not",
        {"method": "GET", "urlPath": "/h9", "headers": {"X-Env": {"not": {"equalTo": "prod"}}}},
        [get("/h9", headers={"X-Env": "dev"})],
        [get("/h9", headers={"X-Env": "prod"})],
    ),
    one(
        "header-and",
        {
            "method": "GET",
            "urlPath": "/h10",
            "headers": {"X-V": {"and": [{"contains": "a"}, {"contains": "b"}]}},
        },
        [get("/h10", headers={"X-V": "ab"})],
        [get("/h10", headers={"X-V": "a"})],
    ),
    one(
        "header-or",
        {
            "method": "GET",
            "urlPath": "/h11",
            "headers": {"X-V": {"or": [{"equalTo": "a"}, {"equalTo": "b"}]}},
        },
        [get("/h11", headers={"X-V": "b"})],
        [get("/h11", headers={"X-V": "c"})],
    ),
    # --- cookies, basic auth, form -------------------------------------------------------------------
    one(
        "cookie-equal",
        {"method": "GET", "urlPath": "/c1", "cookies": {"session": {"equalTo": "abc"}}},
        [get("/c1", headers={"Cookie": "session=abc; other=1"})],
        [get("/c1", headers={"Cookie": "session=x"})],
    ),
    one(
        "cookie-matches",
        {"method": "GET", "urlPath": "/c2", "cookies": {"session": {"matches": ".*123.*"}}},
        [get("/c2", headers={"Cookie": "session=x123y"})],
        [get("/c2")],
    ),
    one(
        "basic-auth",
        {"method": "GET", "urlPath": "/auth", "basicAuth": {"username": "user", "password": "secret"}},
        [get("/auth", headers={"Authorization": BASIC})],
        [get("/auth", headers={"Authorization": BAD_BASIC}), get("/auth")],
    ),
    one(
        "form-parameters",
        {
            "method": "POST",
            "urlPath": "/form",
            "formParameters": {"grant_type": {"equalTo": "client_credentials"}},
        },
        [
            post(
                "/form",
                body="grant_type=client_credentials&scope=a",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        ],
        [
            post(
                "/form",
                body="grant_type=password",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        ],
    ),
    # --- bodies --------------------------------------------------------------------------------------
    one(
        "body-equal",
        {"method": "POST", "urlPath": "/b1", "bodyPatterns": [{"equalTo": "ping"}]},
        [post("/b1", body="ping")],
        [post("/b1", body="pong")],
    ),
    one(
        "body-contains",
        {"method": "POST", "urlPath": "/b2", "bodyPatterns": [{"contains": "needle"}]},
        [post("/b2", body="hay needle hay")],
        [post("/b2", body="hay")],
    ),
    one(
        "body-matches",
        {"method": "POST", "urlPath": "/b3", "bodyPatterns": [{"matches": "id=[0-9]+"}]},
        [post("/b3", body="id=12")],
        [post("/b3", body="id=x")],
    ),
    one(
        "json-equal",
        {"method": "POST", "urlPath": "/j1", "bodyPatterns": [{"equalToJson": {"a": 1, "b": [1, 2]}}]},
        [post("/j1", json={"b": [1, 2], "a": 1}), post("/j1", body='{"a": 1.0, "b": [1, 2]}')],
        [
            post("/j1", json={"a": 1, "b": [2, 1]}),
            post("/j1", json={"a": 1, "b": [1, 2], "c": 0}),
            post("/j1", body="not json"),
        ],
    ),
    one(
        "json-equal-as-string",
        {
            "method": "POST",
            "urlPath": "/j2",
            "bodyPatterns": [{"equalToJson": '{"amount": 5000, "currency": "EUR"}'}],
        },
        [post("/j2", json={"currency": "EUR", "amount": 5000})],
        [post("/j2", json={"amount": 5000})],
    ),
    one(
        "json-ignore-array-order",
        {
            "method": "POST",
            "urlPath": "/j3",
            "bodyPatterns": [{"equalToJson": {"ids": [1, 2, 3]}, "ignoreArrayOrder": True}],
        },
        [post("/j3", json={"ids": [3, 1, 2]})],
        [post("/j3", json={"ids": [3, 1]})],
    ),
    one(
        "json-ignore-extra-elements",
        {
            "method": "POST",
            "urlPath": "/j4",
            "bodyPatterns": [{"equalToJson": {"a": {"b": 1}, "list": [1, 2]}, "ignoreExtraElements": True}],
        },
        [post("/j4", json={"a": {"b": 1, "c": 2}, "list": [1, 2, 3], "z": True})],
        [post("/j4", json={"a": {"b": 2}, "list": [1, 2]})],
    ),
    one(
        "json-placeholders",
        {
            "method": "POST",
            "urlPath": "/j5",
            "bodyPatterns": [
                {
                    "equalToJson": {
                        "id": "${json-unit.any-string}",
                        "n": "${json-unit.any-number}",
                        "ok": "${json-unit.any-boolean}",
                        "ts": "${json-unit.ignore}",
                        "code": "${json-unit.regex}[A-Z]{3}",
                    }
                }
            ],
        },
        [post("/j5", json={"id": "x", "n": 3.5, "ok": False, "ts": [1], "code": "EUR"})],
        [
            post("/j5", json={"id": 1, "n": 3, "ok": False, "ts": 1, "code": "EUR"}),
            post("/j5", json={"id": "x", "n": 3, "ok": False, "ts": 1, "code": "eur"}),
        ],
    ),
    one(
        "jsonpath-exists",
        {"method": "POST", "urlPath": "/jp1", "bodyPatterns": [{"matchesJsonPath": "$.user.id"}]},
        [post("/jp1", json={"user": {"id": 1}})],
        [post("/jp1", json={"user": {}}), post("/jp1", body="x")],
    ),
    one(
        "jsonpath-filter",
        {"method": "POST", "urlPath": "/jp2", "bodyPatterns": [{"matchesJsonPath": "$.items[?(@.qty > 2)]"}]},
        [post("/jp2", json={"items": [{"qty": 1}, {"qty": 5}]})],
        [post("/jp2", json={"items": [{"qty": 1}]})],
    ),
    one(
        "jsonpath-equal-to",
        {
            "method": "POST",
            "urlPath": "/jp3",
            "bodyPatterns": [{"matchesJsonPath": {"expression": "$.currency", "equalTo": "EUR"}}],
        },
        [post("/jp3", json={"currency": "EUR"})],
        [post("/jp3", json={"currency": "USD"})],
    ),
    one(
        "jsonpath-contains-number",
        {
            "method": "POST",
            "urlPath": "/jp4",
            "bodyPatterns": [{"matchesJsonPath": {"expression": "$.amount", "matches": "[0-9]{4}"}}],
        },
        [post("/jp4", json={"amount": 5000})],
        [post("/jp4", json={"amount": 50})],
    ),
    one(
        "jsonpath-absent",
        {
            "method": "POST",
            "urlPath": "/jp5",
            "bodyPatterns": [{"matchesJsonPath": {"expression": "$.debug", "absent": True}}],
        },
        [post("/jp5", json={"a": 1})],
        [post("/jp5", json={"debug": True})],
    ),
    one(
        "json-schema",
        {
            "method": "POST",
            "urlPath": "/schema",
            "bodyPatterns": [
                {
                    "matchesJsonSchema": {
                        "type": "object",
                        "required": ["amount"],
                        "properties": {"amount": {"type": "integer", "minimum": 1}},
                    }
                }
            ],
        },
        [post("/schema", json={"amount": 3})],
        [post("/schema", json={"amount": 0}), post("/schema", json={})],
    ),
    one(
        "xml-equal",
        {"method": "POST", "urlPath": "/x1", "bodyPatterns": [{"equalToXml": XML}]},
        [
            post(
                "/x1",
                body='<order>\n  <id>7</id>\n  <items><item sku="a">1</item><item sku="b">2</item></items>\n'
                "</order>",
            )
        ],
        [post("/x1", body="<order><id>8</id><items/></order>")],
    ),
    one(
        "xpath-exists",
        {"method": "POST", "urlPath": "/x2", "bodyPatterns": [{"matchesXPath": "//item[@sku='b']"}]},
        [post("/x2", body=XML)],
        [post("/x2", body="<order/>")],
    ),
    one(
        "xpath-equal-to",
        {
            "method": "POST",
            "urlPath": "/x3",
            "bodyPatterns": [{"matchesXPath": {"expression": "//id/text()", "equalTo": "7"}}],
        },
        [post("/x3", body=XML)],
        [post("/x3", body=XML.replace(">7<", ">8<"))],
    ),
    one(
        "xpath-namespaces",
        {
            "method": "POST",
            "urlPath": "/x4",
            "bodyPatterns": [
                {"matchesXPath": "/s:Envelope/s:Body/Ping", "xPathNamespaces": {"s": "http://schemas/soap"}}
            ],
        },
        [post("/x4", body=NS_XML)],
        [post("/x4", body="<Envelope/>")],
    ),
    one(
        "date-before",
        {"method": "GET", "urlPath": "/d1", "headers": {"X-Date": {"before": "2030-01-01T00:00:00Z"}}},
        [get("/d1", headers={"X-Date": "2029-12-31T23:00:00Z"})],
        [get("/d1", headers={"X-Date": "2031-01-01T00:00:00Z"})],
    ),
    one(
        "date-after-now",
        {"method": "GET", "urlPath": "/d2", "headers": {"X-Date": {"after": "now -1 days"}}},
        [get("/d2", headers={"X-Date": "2099-01-01T00:00:00Z"})],
        [get("/d2", headers={"X-Date": "2001-01-01T00:00:00Z"})],
    ),
    one(
        "date-equal",
        {
            "method": "GET",
            "urlPath": "/d3",
            "queryParameters": {"at": {"equalToDateTime": "2024-05-01T10:00:00Z"}},
        },
        [get("/d3?at=2024-05-01T10:00:00Z")],
        [get("/d3?at=2024-05-01T10:00:01Z")],
    ),
    one(
        "binary-equal",
        {
            "method": "POST",
            "urlPath": "/bin",
            "bodyPatterns": [{"binaryEqualTo": base64.b64encode(b"\x00\x01\xffdata").decode()}],
        },
        [post("/bin", content=b"\x00\x01\xffdata")],
        [post("/bin", content=b"\x00\x02")],
    ),
    one(
        "multipart-any",
        {
            "method": "POST",
            "urlPath": "/upload",
            "multipartPatterns": [
                {
                    "matchingType": "ANY",
                    "headers": {"Content-Disposition": {"contains": 'name="file"'}},
                    "bodyPatterns": [{"equalTo": "hello file"}],
                }
            ],
        },
        [post("/upload", content=MULTIPART, headers=MP_HEADERS)],
        [post("/upload", content=MULTIPART.replace(b"hello file", b"other"), headers=MP_HEADERS)],
    ),
    one(
        "multipart-all",
        {
            "method": "POST",
            "urlPath": "/upload-all",
            "multipartPatterns": [
                {
                    "matchingType": "ALL",
                    "headers": {"Content-Type": {"matches": "application/json|text/plain"}},
                }
            ],
        },
        [post("/upload-all", content=MULTIPART, headers=MP_HEADERS)],
        [post("/upload-all", content=MULTIPART.replace(b"text/plain", b"image/png"), headers=MP_HEADERS)],
    ),
    one(
        "json-ignore-element",
        {
            "method": "POST",
            "urlPath": "/j6",
            "bodyPatterns": [{"equalToJson": {"list": [1, "${json-unit.ignore-element}", 3]}}],
        },
        [post("/j6", json={"list": [1, {"any": "thing"}, 3]})],
        [post("/j6", json={"list": [1, 2]})],
    ),
    one(
        "several-body-patterns",
        {"method": "POST", "urlPath": "/b4", "bodyPatterns": [{"contains": "a"}, {"matchesJsonPath": "$.b"}]},
        [post("/b4", json={"a": 1, "b": 2})],
        [post("/b4", json={"b": 2})],
    ),
    # --- priorities ----------------------------------------------------------------------------------
    {
        "id": "priority-lower-wins",
        "mappings": [
            m({"method": "GET", "urlPathPattern": "/pr/.*"}, {"body": "generic"}, priority=5),
            m({"method": "GET", "urlPath": "/pr/1"}, {"body": "specific"}, priority=1),
        ],
        "steps": [get("/pr/1"), get("/pr/2")],
    },
    {
        "id": "priority-lower-wins-even-if-older",
        "mappings": [
            m({"method": "GET", "urlPath": "/po"}, {"body": "first, priority 1"}, priority=1),
            m({"method": "GET", "urlPath": "/po"}, {"body": "second, priority 2"}, priority=2),
        ],
        "steps": [get("/po")],
    },
    {
        "id": "priority-tie-newest-wins",
        "mappings": [
            m({"method": "GET", "urlPath": "/tie"}, {"body": "older"}),
            m({"method": "GET", "urlPath": "/tie"}, {"body": "newer"}),
        ],
        "steps": [get("/tie")],
    },
    {
        "id": "priority-default-is-5",
        "mappings": [
            m({"method": "GET", "urlPath": "/p5"}, {"body": "explicit 6"}, priority=6),
            m({"method": "GET", "urlPath": "/p5"}, {"body": "default"}),
            m({"method": "GET", "urlPath": "/p5"}, {"body": "explicit 7"}, priority=7),
        ],
        "steps": [get("/p5")],
    },
    # --- scenarios -----------------------------------------------------------------------------------
    {
        "id": "scenario-flow",
        "mappings": [
            m(
                {"method": "GET", "urlPath": "/todo"},
                {"body": "empty"},
                scenarioName="todo",
                requiredScenarioState="Started",
            ),
            m(
                {"method": "POST", "urlPath": "/todo"},
                {"status": 201},
                scenarioName="todo",
                requiredScenarioState="Started",
                newScenarioState="one",
            ),
            m(
                {"method": "GET", "urlPath": "/todo"},
                {"body": "one item"},
                scenarioName="todo",
                requiredScenarioState="one",
            ),
        ],
        "steps": [
            get("/todo"),
            post("/todo"),
            get("/todo"),
            post("/todo", "status"),
            req("GET", "/__admin/scenarios", "json:scenarios.0.state"),
            req("POST", "/__admin/scenarios/reset", "status"),
            get("/todo"),
        ],
    },
    {
        "id": "scenario-set-state-by-admin",
        "mappings": [
            m(
                {"method": "GET", "urlPath": "/s2"},
                {"body": "A"},
                scenarioName="s2",
                requiredScenarioState="Started",
            ),
            m(
                {"method": "GET", "urlPath": "/s2"},
                {"body": "B"},
                scenarioName="s2",
                requiredScenarioState="B",
            ),
        ],
        "steps": [
            get("/s2"),
            req("PUT", "/__admin/scenarios/s2/state", "status", json={"state": "B"}),
            get("/s2"),
            req("PUT", "/__admin/scenarios/nope/state", "status", json={"state": "B"}),
            req("GET", "/__admin/scenarios", "json:scenarios.0.possibleStates"),
        ],
    },
    {
        "id": "scenario-unconditional-move",
        "mappings": [
            m(
                {"method": "GET", "urlPath": "/s3"},
                {"body": "moves"},
                scenarioName="s3",
                newScenarioState="x",
            ),
            m(
                {"method": "GET", "urlPath": "/s3/state"},
                {"body": "in x"},
                scenarioName="s3",
                requiredScenarioState="x",
            ),
        ],
        "steps": [get("/s3/state", "status"), get("/s3"), get("/s3/state")],
    },
    # --- responses -----------------------------------------------------------------------------------
    one(
        "status-message",
        {"method": "GET", "urlPath": "/r1"},
        [get("/r1", "reason")],
        response={"status": 418, "statusMessage": "I am a teapot today", "body": "tea"},
    ),
    one("status-only", {"method": "GET", "urlPath": "/r2"}, [get("/r2")], response={"status": 204}),
    one(
        "headers-multi-value",
        {"method": "GET", "urlPath": "/r3"},
        [get("/r3")],
        response={
            "headers": {"Content-Type": "text/plain", "X-Multi": ["a", "b"], "X-One": "1"},
            "body": "h",
        },
    ),
    one(
        "json-body",
        {"method": "GET", "urlPath": "/r4"},
        [get("/r4")],
        response={
            "jsonBody": {"id": 42, "items": [1, 2], "nested": {"ok": True}},
            "headers": {"Content-Type": "application/json"},
        },
    ),
    one(
        "base64-body",
        {"method": "GET", "urlPath": "/r5"},
        [get("/r5")],
        response={"base64Body": base64.b64encode(b"\x00binary\xff").decode()},
    ),
    one(
        "body-file", {"method": "GET", "urlPath": "/r6"}, [get("/r6")], response={"bodyFileName": "hello.txt"}
    ),
    one(
        "body-file-json",
        {"method": "GET", "urlPath": "/r7"},
        [get("/r7")],
        response={"bodyFileName": "data.json", "headers": {"Content-Type": "application/json"}},
    ),
    one(
        "fixed-delay",
        {"method": "GET", "urlPath": "/r8"},
        [get("/r8")],
        response={"body": "late", "fixedDelayMilliseconds": 30},
    ),
    one(
        "uniform-delay",
        {"method": "GET", "urlPath": "/r9"},
        [get("/r9")],
        response={"body": "late", "delayDistribution": {"type": "uniform", "lower": 5, "upper": 20}},
    ),
    one(
        "lognormal-delay",
        {"method": "GET", "urlPath": "/r10"},
        [get("/r10")],
        response={"body": "late", "delayDistribution": {"type": "lognormal", "median": 10, "sigma": 0.1}},
    ),
    one(
        "chunked-dribble",
        {"method": "GET", "urlPath": "/r11"},
        [get("/r11")],
        response={
            "body": "0123456789" * 5,
            "chunkedDribbleDelay": {"numberOfChunks": 5, "totalDuration": 50},
        },
    ),
    one("named-stub-header", {"method": "GET", "urlPath": "/r12"}, [get("/r12")], response={"body": "named"}),
    # --- faults (what the client sees) ---------------------------------------------------------------
    one(
        "fault-reset",
        {"method": "GET", "urlPath": "/f1"},
        [get("/f1", "fault")],
        response={"fault": "CONNECTION_RESET_BY_PEER"},
    ),
    one(
        "fault-empty",
        {"method": "GET", "urlPath": "/f2"},
        [get("/f2", "fault")],
        response={"fault": "EMPTY_RESPONSE"},
    ),
    one(
        "fault-malformed-chunk",
        {"method": "GET", "urlPath": "/f3"},
        [get("/f3", "fault")],
        response={"fault": "MALFORMED_RESPONSE_CHUNK"},
    ),
    one(
        "fault-random-data",
        {"method": "GET", "urlPath": "/f4"},
        [get("/f4", "fault")],
        response={"fault": "RANDOM_DATA_THEN_CLOSE"},
    ),
    # --- templating ----------------------------------------------------------------------------------
    one(
        "tpl-path-query",
        {"method": "GET", "urlPathPattern": "/t1/.*"},
        [get("/t1/abc/def?q=x&q=y")],
        response={
            "body": "{{request.path}} {{request.pathSegments.[1]}} {{request.path.[2]}} {{request.query.q}} "
            "{{request.query.q.[1]}} {{request.method}}",
            "transformers": ["response-template"],
        },
    ),
    one(
        "tpl-path-template-params",
        {"method": "GET", "urlPathTemplate": "/t2/{customer}/orders/{id}"},
        [get("/t2/c9/orders/77")],
        response={
            "body": "{{request.path.customer}}-{{request.path.id}}",
            "transformers": ["response-template"],
        },
    ),
    one(
        "tpl-headers-cookies",
        {"method": "GET", "urlPath": "/t3"},
        [get("/t3", headers={"X-Trace": "abc", "Cookie": "k=v"})],
        response={
            "body": "{{request.headers.X-Trace}} {{request.headers.x-trace}} {{request.cookies.k}}",
            "headers": {"X-Echo": "{{request.headers.X-Trace}}"},
            "transformers": ["response-template"],
        },
    ),
    one(
        "tpl-json-path",
        {"method": "POST", "urlPath": "/t4"},
        [post("/t4", json={"order": {"id": 7, "sku": "a"}})],
        response={
            "body": '{"id": {{jsonPath request.body \'$.order.id\'}}, "sku": "{{jsonPath request.body '
            "'$.order.sku'}}\"}",
            "transformers": ["response-template"],
        },
    ),
    one(
        "tpl-if-eq",
        {"method": "ANY", "urlPath": "/t5"},
        [get("/t5?kind=new"), post("/t5?kind=old")],
        response={
            "body": "{{#if (eq request.query.kind 'new')}}created{{else}}listed{{/if}}",
            "transformers": ["response-template"],
        },
    ),
    one(
        "tpl-eq-on-model-values",
        {"method": "GET", "urlPath": "/t5b"},
        [get("/t5b?kind=new", headers={"X-A": "z"})],
        response={
            "body": "A{{#if (eq request.query.kind 'new')}}1{{/if}} "
            "B{{#if (eq request.query.kind.[0] 'new')}}1{{/if}} D{{#if (eq request.method 'GET')}}1{{/if}} "
            "E{{#if (eq request.path '/t5b')}}1{{/if}}"
            " F{{#if (eq request.headers.X-A 'z')}}1{{/if}} G{{#if (eq 1 1)}}1{{/if}} H{{#if (eq "
            "request.query.kind.first 'new')}}1{{/if}} K{{math 7 '/' 2}} L{{#if (contains request.path"
            " 't')}}1{{/if}} M{{size request.pathSegments}} O{{#if request.query.nope}}1{{else}}0{{/if}}",
            "transformers": ["response-template"],
        },
    ),
    one(
        "tpl-each",
        {"method": "GET", "urlPathPattern": "/t6/.*"},
        [get("/t6/a/b/c")],
        response={
            "body": "{{#each request.pathSegments}}[{{@index}}={{this}}]{{/each}}",
            "transformers": ["response-template"],
        },
    ),
    one(
        "tpl-body-raw",
        {"method": "POST", "urlPath": "/t7"},
        [post("/t7", body='<a href="x">&</a>')],
        response={"body": "{{request.body}}", "transformers": ["response-template"]},
    ),
    one(
        "tpl-random-value",
        {"method": "GET", "urlPath": "/t8"},
        [get("/t8", "regex:[0-9]{8}")],
        response={"body": "{{randomValue length=8 type='NUMERIC'}}", "transformers": ["response-template"]},
    ),
    one(
        "tpl-string-helpers",
        {"method": "GET", "urlPath": "/t9"},
        [get("/t9?name=ada")],
        response={
            "body": "{{upper request.query.name}} {{capitalize request.query.name}} {{size 'abcd'}}",
            "transformers": ["response-template"],
        },
    ),
    one(
        "tpl-not-enabled",
        {"method": "GET", "urlPath": "/t10"},
        [get("/t10")],
        response={"body": "{{request.path}}"},
    ),
    one(
        "tpl-body-file",
        {"method": "GET", "urlPath": "/t11"},
        [get("/t11")],
        response={"bodyFileName": "tpl.txt", "transformers": ["response-template"]},
    ),
    one(
        "tpl-unless-and-math",
        {"method": "GET", "urlPath": "/t12"},
        [get("/t12?n=4")],
        response={
            "body": "{{#unless (eq request.query.n '3')}}not three{{/unless}} {{math request.query.n '*' 2}}",
            "transformers": ["response-template"],
        },
    ),
    one(
        "tpl-json-helpers",
        {"method": "POST", "urlPath": "/t13"},
        [
            post(
                "/t13?q=v",
                json={"a": 1, "b": [1, 2], "items": [{"id": 1}, {"id": 2, "t": []}], "o": {"p": {}}},
            )
        ],
        response={
            "body": "A={{formatJson request.body}}|B={{lookup (parseJson request.body) 'a'}}|"
            "C={{val request.query.nope default='dflt'}}|D={{val request.query.q}}|"
            'E={{#each (range 1 3)}}{{this}},{{/each}}|F={{jsonMerge request.body \'{"z":1,"o":{"q":2}}\'}}|'
            "G={{toJson (parseJson request.body)}}|H={{join (array 1 2 3) '-'}}|"
            "I={{abbreviate 'hello world' 8}}|"
            "J={{stripes}}",
            "transformers": ["response-template"],
        },
    ),
    # --- unmatched -----------------------------------------------------------------------------------
    {
        "id": "unmatched-404",
        "mappings": [m({"method": "GET", "urlPath": "/exists"})],
        "steps": [
            get("/missing", "status"),
            req("GET", "/__admin/requests/unmatched", "json:requests#len"),
            req("GET", "/__admin/requests/unmatched/near-misses", "json:nearMisses.0.stubMapping.id"),
        ],
    },
    # the 404 body: WireMock's closest-stub table, byte for byte
    {
        "id": "not-matched-table-headers-query-json",
        "mappings": [
            m(
                {
                    "method": "POST",
                    "urlPath": "/charge",
                    "queryParameters": {"mode": {"equalTo": "live"}},
                    "headers": {"X-Key": {"matches": "k-[0-9]+"}},
                    "bodyPatterns": [{"equalToJson": {"amount": 5, "tags": ["a"]}}],
                }
            )
        ],
        "steps": [post("/charge?mode=test", headers={"X-Key": "k-x"}, json={"amount": 6, "tags": []})],
    },
    {
        "id": "not-matched-table-url-cookie",
        "mappings": [
            m(
                {
                    "method": "GET",
                    "url": "/exact?a=1",
                    "cookies": {"s": {"equalTo": "1"}},
                    "queryParameters": {"b": {"contains": "x"}},
                }
            )
        ],
        "steps": [get("/exact?a=2&b=y", headers={"Cookie": "s=2"})],
    },
    {
        "id": "not-matched-table-method-absent-header",
        "mappings": [
            m({"method": "GET", "urlPathPattern": "/p/.*", "headers": {"X-Need": {"equalTo": "a"}}})
        ],
        "steps": [post("/q/1", body="plain")],
    },
    {
        "id": "not-matched-table-body-operators",
        "mappings": [
            m(
                {
                    "method": "POST",
                    "urlPath": "/b",
                    "bodyPatterns": [{"contains": "needle"}, {"matchesJsonPath": "$.a"}, {"equalTo": "x"}],
                }
            )
        ],
        "steps": [post("/b", body='{"b":1}')],
    },
    {
        "id": "not-matched-table-path-params-form",
        "mappings": [
            m(
                {
                    "method": "POST",
                    "urlPathTemplate": "/o/{id}",
                    "pathParameters": {"id": {"equalTo": "1"}},
                    "formParameters": {"f": {"equalTo": "1"}},
                }
            )
        ],
        "steps": [post("/o/2", body="f=2", headers={"Content-Type": "application/x-www-form-urlencoded"})],
    },
    {
        "id": "not-matched-table-scenario",
        "mappings": [m({"method": "GET", "urlPath": "/s"}, scenarioName="s", requiredScenarioState="two")],
        "steps": [get("/s")],
    },
    {"id": "no-stubs-404", "mappings": [], "steps": [get("/nothing", "exact")]},
    # --- admin API -----------------------------------------------------------------------------------
    {
        "id": "admin-create-echo",
        "mappings": [],
        "steps": [
            req(
                "POST",
                "/__admin/mappings",
                "json",
                json={
                    "id": "8c5db8b0-2db4-4ad7-a99f-38c9b00da3f7",
                    "name": "n",
                    "request": {"method": "GET", "urlPath": "/e"},
                    "response": {"status": 202, "jsonBody": {"a": 1}},
                    "metadata": {"team": "x"},
                },
            ),
            req("GET", "/__admin/mappings/8c5db8b0-2db4-4ad7-a99f-38c9b00da3f7", "json"),
            req("GET", "/__admin/mappings", "json:meta.total"),
            req(
                "PUT",
                "/__admin/mappings/8c5db8b0-2db4-4ad7-a99f-38c9b00da3f7",
                "json",
                json={"request": {"urlPath": "/e2"}, "response": {"body": "x"}},
            ),
            get("/e2"),
            req("DELETE", "/__admin/mappings/8c5db8b0-2db4-4ad7-a99f-38c9b00da3f7", "status"),
            req("GET", "/__admin/mappings/8c5db8b0-2db4-4ad7-a99f-38c9b00da3f7", "status"),
            req("DELETE", "/__admin/mappings/8c5db8b0-2db4-4ad7-a99f-38c9b00da3f7", "status"),
        ],
    },
    {
        "id": "admin-journal",
        "mappings": [m({"method": "POST", "urlPath": "/pay"})],
        "steps": [
            post("/pay", json={"amount": 1}),
            post("/pay", json={"amount": 2}),
            get("/pay", "status"),
            req("POST", "/__admin/requests/count", "json", json={"method": "POST", "urlPath": "/pay"}),
            req(
                "POST",
                "/__admin/requests/find",
                "json:requests#len",
                json={"method": "POST", "urlPath": "/pay", "bodyPatterns": [{"contains": "2"}]},
            ),
            req(
                "POST",
                "/__admin/requests/find",
                "json:requests.0.body",
                json={"method": "POST", "urlPath": "/pay", "bodyPatterns": [{"contains": "2"}]},
            ),
            req("GET", "/__admin/requests", "json:meta.total"),
            req("GET", "/__admin/requests?limit=1", "json:requests.0.request.method"),
            req("GET", "/__admin/requests", "json:requests.0.wasMatched"),
            req("POST", "/__admin/requests/remove", "json:serveEvents#len", json={"method": "GET"}),
            req("DELETE", "/__admin/requests", "json"),
            req("POST", "/__admin/requests/count", "json", json={"method": "ANY"}),
        ],
    },
    {
        "id": "admin-metadata",
        "mappings": [
            m({"method": "GET", "urlPath": "/md1"}, metadata={"team": "pay", "tags": ["a"]}),
            m({"method": "GET", "urlPath": "/md2"}, metadata={"team": "ship"}),
        ],
        "steps": [
            req(
                "POST",
                "/__admin/mappings/find-by-metadata",
                "json:mappings#len",
                json={"matchesJsonPath": "$.tags"},
            ),
            req(
                "POST",
                "/__admin/mappings/find-by-metadata",
                "json:mappings.0.request.urlPath",
                json={"matchesJsonPath": {"expression": "$.team", "equalTo": "ship"}},
            ),
            req("POST", "/__admin/mappings/remove-by-metadata", "status", json={"matchesJsonPath": "$.tags"}),
            req("GET", "/__admin/mappings", "json:meta.total"),
        ],
    },
    {
        "id": "admin-import",
        "mappings": [m({"method": "GET", "urlPath": "/keep"})],
        "steps": [
            req(
                "POST",
                "/__admin/mappings/import",
                "status",
                json={
                    "mappings": [
                        {"request": {"method": "GET", "urlPath": "/imp"}, "response": {"body": "imported"}}
                    ]
                },
            ),
            get("/imp", "status"),
            get("/keep", "status"),
            req("GET", "/__admin/mappings", "json:meta.total"),
        ],
    },
    {
        "id": "admin-unmatched-stubs",
        "mappings": [m({"method": "GET", "urlPath": "/hit"}), m({"method": "GET", "urlPath": "/never"})],
        "steps": [get("/hit"), req("GET", "/__admin/mappings/unmatched", "json:mappings.0.request.urlPath")],
    },
    {
        "id": "admin-near-misses",
        "mappings": [m({"method": "POST", "urlPath": "/nm"})],
        "steps": [
            post("/nm2", "status"),
            req("POST", "/__admin/near-misses/request-pattern", "json:nearMisses#len", json={"url": "/nm3"}),
            req(
                "POST",
                "/__admin/near-misses/request",
                "json:nearMisses.0.stubMapping.request",
                json={"url": "/nm", "method": "GET"},
            ),
        ],
    },
    {
        "id": "admin-errors",
        "mappings": [],
        "steps": [
            req(
                "POST",
                "/__admin/mappings",
                "json:errors.0.source.pointer",
                json={"request": {"method": "GET", "queryParameters": {"a": {"foo": "1"}}}, "response": {}},
            ),
            req(
                "POST",
                "/__admin/mappings",
                "json:errors.0.source.pointer",
                json={
                    "request": {"urlPath": "/x", "bodyPatterns": [{"equalToJson": "{bad"}]},
                    "response": {},
                },
            ),
            req("POST", "/__admin/mappings", "status", body="{not json"),
            req("GET", "/__admin/no-such-route", "status"),
            req("GET", "/__admin/mappings/00000000-0000-0000-0000-000000000000", "status"),
        ],
    },
    {
        "id": "admin-files",
        "mappings": [
            {
                "request": {"method": "GET", "urlPath": "/from-put-file"},
                "response": {"bodyFileName": "put/f.txt"},
            }
        ],
        "steps": [
            req("PUT", "/__admin/files/put/f.txt", "json", body="put via admin"),
            req("GET", "/__admin/files/put/f.txt", "exact"),
            get("/from-put-file", "exact"),
            req("DELETE", "/__admin/files/put/f.txt", "status"),
            req("GET", "/__admin/files/put/f.txt", "status"),
        ],
    },
    {
        "id": "admin-misc",
        "mappings": [],
        "steps": [
            req("GET", "/__admin/health", "json:status"),
            req("GET", "/__admin/health", "json:version"),
            req("GET", "/__admin/settings", "json"),
            req("POST", "/__admin/reset", "status"),
            req("GET", "/__admin/", "json:meta.total"),
            req("POST", "/__admin/scenarios/reset", "json"),
            req("DELETE", "/__admin/mappings", "status"),
            req("POST", "/__admin/mappings/reset", "status"),
        ],
    },
]
