"""WireMock's response definitions: status, headers, body (inline, JSON, base64, file), delays, faults."""

from __future__ import annotations

import base64
import json
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from testbed.stubs.errors import InvalidStubError, check_known_keys

# The keys WireMock 3's ResponseDefinition accepts; any other is refused, as WireMock does (422).
RESPONSE_KEYS = frozenset(
    {
        "status",
        "statusMessage",
        "headers",
        "body",
        "jsonBody",
        "base64Body",
        "bodyFileName",
        "additionalProxyRequestHeaders",
        "removeProxyRequestHeaders",
        "fixedDelayMilliseconds",
        "delayDistribution",
        "chunkedDribbleDelay",
        "proxyBaseUrl",
        "proxyUrlPrefixToRemove",
        "fault",
        "transformers",
        "transformerParameters",
        "fromConfiguredStub",
    }
)
FAULTS = ("CONNECTION_RESET_BY_PEER", "EMPTY_RESPONSE", "MALFORMED_RESPONSE_CHUNK", "RANDOM_DATA_THEN_CLOSE")


@dataclass(frozen=True)
class DelayDistribution:
    """A random delay: uniform(lower, upper), lognormal(median, sigma[, maxValue]) or fixed(milliseconds)."""

    kind: str
    params: Mapping[str, float]

    def sample_ms(self) -> float:
        p = self.params
        if self.kind == "uniform":
            return random.uniform(p["lower"], p["upper"])
        if self.kind == "lognormal":
            value = math.exp(random.gauss(math.log(p["median"]), p["sigma"])) if p["median"] > 0 else 0.0
            if "maxValue" in p:
                value = min(value, p["maxValue"])
            return value
        return p["milliseconds"]


@dataclass(frozen=True)
class ChunkedDribble:
    number_of_chunks: int
    total_duration_ms: int


@dataclass(frozen=True, eq=False)
class ResponseDefinition:
    """A parsed WireMock response definition; ``raw`` is the JSON it came from."""

    status: int = 200
    status_message: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    body_text: str | None = None  # the body as text when it may be templated (body or jsonBody)
    body_file: str | None = None
    fixed_delay_ms: int | None = None
    delay_distribution: DelayDistribution | None = None
    chunked_dribble: ChunkedDribble | None = None
    fault: str | None = None
    proxy_base_url: str | None = None
    proxy_url_prefix_to_remove: str | None = None
    additional_proxy_headers: Mapping[str, str] = field(default_factory=dict)
    remove_proxy_headers: tuple[str, ...] = ()
    transformers: tuple[str, ...] = ()
    transformer_parameters: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict)

    def delay_ms(self, global_fixed_delay: int | None = None) -> float:
        total = float(self.fixed_delay_ms if self.fixed_delay_ms is not None else (global_fixed_delay or 0))
        if self.delay_distribution is not None:
            total += self.delay_distribution.sample_ms()
        return total

    @property
    def templated(self) -> bool:
        return "response-template" in self.transformers

    def to_json(self) -> dict[str, Any]:
        return dict(self.raw)


def _int(obj: Mapping[str, Any], key: str, pointer: str) -> int:
    v = obj[key]
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise InvalidStubError(f"{key} must be a number, got {json.dumps(v)}", f"{pointer}/{key}")
    try:
        return int(v)
    except ValueError as exc:
        raise InvalidStubError(f"{key} must be a number, got {json.dumps(v)}", f"{pointer}/{key}") from exc


def parse_response(obj: Any, pointer: str = "/response") -> ResponseDefinition:
    """A ResponseDefinition from WireMock JSON; InvalidStubError names the JSON pointer of a bad field."""
    if obj is None:
        obj = {}
    if not isinstance(obj, dict):
        raise InvalidStubError("the response definition must be a JSON object", pointer)
    check_known_keys(obj, RESPONSE_KEYS, pointer, "response definition")
    kw: dict[str, Any] = {"raw": obj}
    if obj.get("status") is not None:
        kw["status"] = _int(obj, "status", pointer)
        if not 100 <= kw["status"] <= 999:
            raise InvalidStubError(
                f"status must be an HTTP status code, got {kw['status']}", f"{pointer}/status"
            )
    if obj.get("statusMessage") is not None:
        kw["status_message"] = str(obj["statusMessage"])
    headers: list[tuple[str, str]] = []
    raw_headers = obj.get("headers") or {}
    if not isinstance(raw_headers, dict):
        raise InvalidStubError(
            "headers must be an object of name -> value or list of values", f"{pointer}/headers"
        )
    for name, value in raw_headers.items():
        for v in value if isinstance(value, list) else [value]:
            headers.append((str(name), v if isinstance(v, str) else json.dumps(v)))
    kw["headers"] = tuple(headers)
    bodies = [k for k in ("body", "jsonBody", "base64Body", "bodyFileName") if obj.get(k) is not None]
    if len(bodies) > 1:
        raise InvalidStubError(
            f"only one of body, jsonBody, base64Body, bodyFileName may be given, got {', '.join(bodies)}",
            pointer,
        )
    if obj.get("body") is not None:
        body = obj["body"]
        text = body if isinstance(body, str) else json.dumps(body)
        kw["body_text"] = text
        kw["body"] = text.encode("utf-8")
    elif obj.get("jsonBody") is not None:
        text = json.dumps(obj["jsonBody"], separators=(",", ":"), ensure_ascii=False)
        kw["body_text"] = text
        kw["body"] = text.encode("utf-8")
    elif obj.get("base64Body") is not None:
        try:
            kw["body"] = base64.b64decode(str(obj["base64Body"]), validate=True)
        except ValueError as exc:
            raise InvalidStubError(f"base64Body is not valid base64: {exc}", f"{pointer}/base64Body") from exc
    elif obj.get("bodyFileName") is not None:
        kw["body_file"] = str(obj["bodyFileName"])
    if obj.get("fixedDelayMilliseconds") is not None:
        kw["fixed_delay_ms"] = _int(obj, "fixedDelayMilliseconds", pointer)
    dd = obj.get("delayDistribution")
    if dd is not None:
        where = f"{pointer}/delayDistribution"
        if not isinstance(dd, dict):
            raise InvalidStubError("delayDistribution must be an object with a type", where)
        kind = dd.get("type")
        needed = {"uniform": ("lower", "upper"), "lognormal": ("median", "sigma"), "fixed": ("milliseconds",)}
        if kind not in needed:
            raise InvalidStubError(
                f"delayDistribution type must be uniform, lognormal or fixed, got {kind!r}", f"{where}/type"
            )
        missing = [k for k in needed[kind] if k not in dd]
        if missing:
            raise InvalidStubError(f"a {kind} delayDistribution needs {', '.join(missing)}", where)
        params = {k: float(v) for k, v in dd.items() if k != "type" and isinstance(v, int | float)}
        kw["delay_distribution"] = DelayDistribution(str(kind), params)
    cd = obj.get("chunkedDribbleDelay")
    if cd is not None:
        where = f"{pointer}/chunkedDribbleDelay"
        if not isinstance(cd, dict) or "numberOfChunks" not in cd or "totalDuration" not in cd:
            raise InvalidStubError(
                'chunkedDribbleDelay needs {"numberOfChunks": N, "totalDuration": ms}', where
            )
        kw["chunked_dribble"] = ChunkedDribble(
            max(1, _int(cd, "numberOfChunks", where)), _int(cd, "totalDuration", where)
        )
    if obj.get("fault") is not None:
        fault = obj["fault"]
        if fault not in FAULTS:
            raise InvalidStubError(
                f"fault must be one of {', '.join(FAULTS)}, got {json.dumps(fault)}", f"{pointer}/fault"
            )
        kw["fault"] = fault
    if obj.get("proxyBaseUrl"):
        kw["proxy_base_url"] = str(obj["proxyBaseUrl"]).rstrip("/")
        if obj.get("proxyUrlPrefixToRemove"):
            kw["proxy_url_prefix_to_remove"] = str(obj["proxyUrlPrefixToRemove"])
        kw["additional_proxy_headers"] = {
            str(k): str(v) for k, v in (obj.get("additionalProxyRequestHeaders") or {}).items()
        }
        kw["remove_proxy_headers"] = tuple(str(h).lower() for h in obj.get("removeProxyRequestHeaders") or [])
    if obj.get("transformers"):
        if not isinstance(obj["transformers"], list):
            raise InvalidStubError("transformers must be a list of names", f"{pointer}/transformers")
        kw["transformers"] = tuple(str(t) for t in obj["transformers"])
    if obj.get("transformerParameters"):
        kw["transformer_parameters"] = dict(obj["transformerParameters"])
    return ResponseDefinition(**kw)
