"""A fluent, typed way to write stub mappings in Python; it produces WireMock JSON.

http_stub.stub_for(
    post("/v1/payments/charge").with_json({"amount": 5000}).will_return(status=200, json={"ok": True})
)
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Mapping
from typing import Any

from testbed.stubs.errors import StubError
from testbed.stubs.responses import FAULTS

Pattern = str | Mapping[str, Any]


# --- value patterns as dicts -------------------------------------------------------------------------


def equal_to(value: str, *, case_insensitive: bool = False) -> dict[str, Any]:
    """``{"equalTo": value}``."""
    out: dict[str, Any] = {"equalTo": value}
    if case_insensitive:
        out["caseInsensitive"] = True
    return out


def contains(value: str) -> dict[str, Any]:
    return {"contains": value}


def matching(regex: str) -> dict[str, Any]:
    return {"matches": regex}


def not_matching(regex: str) -> dict[str, Any]:
    return {"doesNotMatch": regex}


def absent() -> dict[str, Any]:
    return {"absent": True}


def json_path(expression: str, pattern: Pattern | None = None) -> dict[str, Any]:
    """``{"matchesJsonPath": ...}``, optionally with a sub-pattern applied to the result."""
    if pattern is None:
        return {"matchesJsonPath": expression}
    return {"matchesJsonPath": {"expression": expression, **_pattern(pattern)}}


def _pattern(value: Pattern) -> dict[str, Any]:
    return {"equalTo": value} if isinstance(value, str) else dict(value)


# --- request patterns --------------------------------------------------------------------------------


class RequestPatternBuilder:
    """A request pattern under construction; ``will_return`` / ``will_fault`` turn it into a stub."""

    def __init__(
        self,
        method: str,
        path: str | None = None,
        *,
        url: str | None = None,
        url_regex: str | None = None,
        path_regex: str | None = None,
        path_template: str | None = None,
    ) -> None:
        self._json: dict[str, Any] = {"method": method}
        given = [
            (k, v)
            for k, v in (
                ("urlPath", path),
                ("url", url),
                ("urlPattern", url_regex),
                ("urlPathPattern", path_regex),
                ("urlPathTemplate", path_template),
            )
            if v is not None
        ]
        if len(given) > 1:
            raise StubError("give one of path, url, url_regex, path_regex, path_template")
        if given:
            key, value = given[0]
            if key == "urlPath" and "?" in value:
                key = "url"
            self._json[key] = value

    def _add(self, table: str, name: str, pattern: Pattern) -> RequestPatternBuilder:
        self._json.setdefault(table, {})[name] = _pattern(pattern)
        return self

    def with_header(self, name: str, value: Pattern) -> RequestPatternBuilder:
        """Require a header: a string means equalTo, a dict is any WireMock pattern."""
        return self._add("headers", name, value)

    def without_header(self, name: str) -> RequestPatternBuilder:
        return self._add("headers", name, absent())

    def with_query(
        self, name: str | None = None, value: Pattern | None = None, **params: Pattern
    ) -> RequestPatternBuilder:
        """Require query parameters: ``with_query("page", "2")`` or ``with_query(page="2", size="10")``."""
        if name is not None:
            if value is None:
                raise StubError("with_query(name, value): value is missing")
            params = {name: value, **params}
        for k, v in params.items():
            self._add("queryParameters", k, v)
        return self

    def with_path_param(self, name: str, value: Pattern) -> RequestPatternBuilder:
        return self._add("pathParameters", name, value)

    def with_cookie(self, name: str, value: Pattern) -> RequestPatternBuilder:
        return self._add("cookies", name, value)

    def with_form(self, name: str, value: Pattern) -> RequestPatternBuilder:
        return self._add("formParameters", name, value)

    def with_basic_auth(self, username: str, password: str) -> RequestPatternBuilder:
        self._json["basicAuth"] = {"username": username, "password": password}
        return self

    def with_json(
        self, value: Any, *, ignore_extra_elements: bool = False, ignore_array_order: bool = False
    ) -> RequestPatternBuilder:
        """Require a JSON body equal to ``value`` (json-unit placeholders such as
        ``"${json-unit.any-string}"`` allowed)."""
        pattern: dict[str, Any] = {"equalToJson": value}
        if ignore_extra_elements:
            pattern["ignoreExtraElements"] = True
        if ignore_array_order:
            pattern["ignoreArrayOrder"] = True
        return self.with_body(pattern)

    def with_body(self, pattern: Pattern) -> RequestPatternBuilder:
        """Require the body to match: a string means equalTo, a dict is any WireMock body pattern."""
        self._json.setdefault("bodyPatterns", []).append(_pattern(pattern))
        return self

    def with_json_path(self, expression: str, pattern: Pattern | None = None) -> RequestPatternBuilder:
        return self.with_body(json_path(expression, pattern))

    def to_json(self) -> dict[str, Any]:
        """The WireMock request pattern JSON."""
        return copy.deepcopy(self._json)

    def describe(self) -> str:
        url = next(
            (
                self._json[k]
                for k in ("url", "urlPath", "urlPattern", "urlPathPattern", "urlPathTemplate")
                if k in self._json
            ),
            "(any URL)",
        )
        extra = {
            k: v
            for k, v in self._json.items()
            if k not in ("method", "url", "urlPath", "urlPattern", "urlPathPattern", "urlPathTemplate")
        }
        return f"{self._json['method']} {url}" + (f" {json.dumps(extra)}" if extra else "")

    # -- turning into a stub -----------------------------------------------------------------------

    def will_return(
        self,
        status: int = 200,
        *,
        json: Any = None,
        body: str | bytes | None = None,
        headers: Mapping[str, str | list[str]] | None = None,
        body_file: str | None = None,
        status_message: str | None = None,
        delay_ms: int | None = None,
        template: bool = False,
    ) -> StubBuilder:
        """Answer with this response. ``json=`` sets Content-Type: application/json unless given."""
        response: dict[str, Any] = {"status": status}
        hdrs: dict[str, Any] = dict(headers or {})
        if sum(x is not None for x in (json, body, body_file)) > 1:
            raise StubError("will_return: give only one of json=, body=, body_file=")
        if json is not None:
            response["jsonBody"] = json
            if not any(k.lower() == "content-type" for k in hdrs):
                hdrs["Content-Type"] = "application/json"
        elif isinstance(body, bytes):
            response["base64Body"] = base64.b64encode(body).decode()
        elif body is not None:
            response["body"] = body
        elif body_file is not None:
            response["bodyFileName"] = body_file
        if hdrs:
            response["headers"] = hdrs
        if status_message is not None:
            response["statusMessage"] = status_message
        if delay_ms is not None:
            response["fixedDelayMilliseconds"] = delay_ms
        if template:
            response["transformers"] = ["response-template"]
        return StubBuilder(self.to_json(), response)

    def will_fault(self, fault: str) -> StubBuilder:
        """Fail at the socket: CONNECTION_RESET_BY_PEER, EMPTY_RESPONSE, MALFORMED_RESPONSE_CHUNK or
        RANDOM_DATA_THEN_CLOSE."""
        if fault not in FAULTS:
            raise StubError(f"unknown fault {fault!r}; use one of {', '.join(FAULTS)}")
        return StubBuilder(self.to_json(), {"fault": fault})

    def will_proxy_to(self, base_url: str) -> StubBuilder:
        """Forward matching requests to ``base_url`` and answer with its response."""
        return StubBuilder(self.to_json(), {"proxyBaseUrl": base_url})


class StubBuilder:
    """A complete stub: request pattern, response, and options (name, priority, scenario, delays)."""

    def __init__(self, request: dict[str, Any], response: dict[str, Any]) -> None:
        self._json: dict[str, Any] = {"request": request, "response": response}

    def named(self, name: str) -> StubBuilder:
        self._json["name"] = name
        return self

    def with_id(self, stub_id: str) -> StubBuilder:
        self._json["id"] = stub_id
        return self

    def at_priority(self, priority: int) -> StubBuilder:
        """1 is the highest priority; stubs without one are 5."""
        self._json["priority"] = priority
        return self

    def in_scenario(self, name: str, *, when: str | None = None, then: str | None = None) -> StubBuilder:
        """Take part in a scenario: serve only ``when`` it is in that state, then move it to ``then``."""
        self._json["scenarioName"] = name
        if when is not None:
            self._json["requiredScenarioState"] = when
        if then is not None:
            self._json["newScenarioState"] = then
        return self

    def with_delay(self, milliseconds: int) -> StubBuilder:
        self._json["response"]["fixedDelayMilliseconds"] = milliseconds
        return self

    def with_uniform_delay(self, lower_ms: int, upper_ms: int) -> StubBuilder:
        self._json["response"]["delayDistribution"] = {
            "type": "uniform",
            "lower": lower_ms,
            "upper": upper_ms,
        }
        return self

    def with_lognormal_delay(self, median_ms: float, sigma: float) -> StubBuilder:
        self._json["response"]["delayDistribution"] = {
            "type": "lognormal",
            "median": median_ms,
            "sigma": sigma,
        }
        return self

    def with_chunked_dribble(self, chunks: int, total_ms: int) -> StubBuilder:
        self._json["response"]["chunkedDribbleDelay"] = {"numberOfChunks": chunks, "totalDuration": total_ms}
        return self

    def with_webhook(
        self,
        url: str,
        *,
        method: str = "POST",
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        delay_ms: int | None = None,
    ) -> StubBuilder:
        """After serving, call ``url`` (templated: ``{{jsonPath originalRequest.body '$.id'}}``)."""
        params: dict[str, Any] = {"method": method, "url": url}
        if body is not None:
            params["body"] = body if isinstance(body, str) else json.dumps(body)
        if headers:
            params["headers"] = dict(headers)
        if delay_ms is not None:
            params["delay"] = {"type": "fixed", "milliseconds": delay_ms}
        self._json.setdefault("serveEventListeners", []).append({"name": "webhook", "parameters": params})
        return self

    def with_metadata(self, **metadata: Any) -> StubBuilder:
        self._json.setdefault("metadata", {}).update(metadata)
        return self

    def to_json(self) -> dict[str, Any]:
        """The WireMock stub mapping JSON."""
        return copy.deepcopy(self._json)


def get(path: str | None = None, **kw: str) -> RequestPatternBuilder:
    """A GET request pattern; ``path`` is matched exactly (with its query string if it has one)."""
    return RequestPatternBuilder("GET", path, **kw)


def post(path: str | None = None, **kw: str) -> RequestPatternBuilder:
    return RequestPatternBuilder("POST", path, **kw)


def put(path: str | None = None, **kw: str) -> RequestPatternBuilder:
    return RequestPatternBuilder("PUT", path, **kw)


def patch(path: str | None = None, **kw: str) -> RequestPatternBuilder:
    return RequestPatternBuilder("PATCH", path, **kw)


def delete(path: str | None = None, **kw: str) -> RequestPatternBuilder:
    return RequestPatternBuilder("DELETE", path, **kw)


def head(path: str | None = None, **kw: str) -> RequestPatternBuilder:
    return RequestPatternBuilder("HEAD", path, **kw)


def options(path: str | None = None, **kw: str) -> RequestPatternBuilder:
    return RequestPatternBuilder("OPTIONS", path, **kw)


def any_(path: str | None = None, **kw: str) -> RequestPatternBuilder:
    """Any method."""
    return RequestPatternBuilder("ANY", path, **kw)
