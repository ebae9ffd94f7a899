"""WireMock's request patterns: method, URL, parameters, headers, cookies, auth and body, as one matcher.

``RequestPattern.matches`` is the hot path (cheap checks first, stop at the first miss);
``RequestPattern.evaluate`` computes every field with its distance, for near misses and diff tables.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from testbed.stubs.errors import InvalidStubError, check_known_keys
from testbed.stubs.operators import (
    Absent,
    BinaryEqualTo,
    MultiValuePattern,
    ValuePattern,
    levenshtein_ratio,
    parse_multi_value_pattern,
    parse_value_pattern,
)
from testbed.stubs.request import Part, Request

URL_KEYS = ("url", "urlPattern", "urlPath", "urlPathPattern", "urlPathTemplate")
# The keys WireMock 3's RequestPattern accepts; any other is refused, as WireMock does (422).
REQUEST_KEYS = frozenset(
    {
        *URL_KEYS,
        "method",
        "headers",
        "pathParameters",
        "queryParameters",
        "formParameters",
        "cookies",
        "basicAuth",
        "basicAuthCredentials",
        "bodyPatterns",
        "multipartPatterns",
        "customMatcher",
        "scheme",
        "host",
        "port",
        "clientIp",
        "name",
    }
)

# Weights WireMock gives the parts of a request when it ranks near misses: the URL dominates.
URL_WEIGHT = 10.0
METHOD_WEIGHT = 3.0


@dataclass(frozen=True)
class FieldResult:
    """One row of a near-miss table: what the stub expected, what the request had, and how far apart."""

    label: str
    expected: str
    actual: str
    distance: float
    weight: float = 1.0

    @property
    def matched(self) -> bool:
        return self.distance == 0.0


@dataclass(frozen=True)
class MatchResult:
    """Every field of a pattern evaluated against one request."""

    fields: tuple[FieldResult, ...]

    @property
    def matched(self) -> bool:
        return all(f.matched for f in self.fields)

    @property
    def distance(self) -> float:
        total = sum(f.weight for f in self.fields)
        if not total:
            return 0.0
        return sum(f.distance * f.weight for f in self.fields) / total


def _template_regex(template: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    names: list[str] = []
    out = []
    for piece in re.split(r"(\{[^}/]+\})", template):
        if piece.startswith("{") and piece.endswith("}"):
            name = piece[1:-1]
            if name == "*" or name.startswith("*"):
                out.append("(.*)")
                names.append(name.lstrip("*") or "*")
            else:
                out.append("([^/]+)")
                names.append(name)
        else:
            out.append(re.escape(piece))
    return re.compile("".join(out)), tuple(names)


@dataclass(frozen=True)
class UrlMatcher:
    """One of url / urlPattern / urlPath / urlPathPattern / urlPathTemplate (or any URL)."""

    kind: str | None
    value: str = ""

    @cached_property
    def _regex(self) -> re.Pattern[str]:
        return re.compile(self.value)

    @cached_property
    def _template(self) -> tuple[re.Pattern[str], tuple[str, ...]]:
        return _template_regex(self.value)

    def matches(self, request: Request) -> bool:
        kind = self.kind
        if kind is None:
            return True
        if kind == "urlPath":
            return request.path == self.value
        if kind == "url":
            return request.url == self.value
        if kind == "urlPathPattern":
            return self._regex.fullmatch(request.path) is not None
        if kind == "urlPattern":
            return self._regex.fullmatch(request.url) is not None
        return self._template[0].fullmatch(request.path) is not None

    def index_key(self) -> str | None:
        """The exact path this matcher needs (for the registry's index), or None if it is a pattern."""
        if self.kind == "urlPath":
            return self.value
        if self.kind == "url":
            return self.value.split("?", 1)[0]
        return None

    def path_parameters(self, request: Request) -> dict[str, str]:
        if self.kind != "urlPathTemplate":
            return {}
        regex, names = self._template
        m = regex.fullmatch(request.path)
        return dict(zip(names, m.groups())) if m else {}

    def distance(self, request: Request) -> float:
        if self.matches(request):
            return 0.0
        if self.kind in ("url", "urlPath", "urlPathTemplate"):
            actual = request.url if self.kind == "url" else request.path
            return levenshtein_ratio(self.value, actual)
        return 1.0

    def describe(self) -> str:
        if self.kind is None:
            return "[any URL]"
        prefix = {
            "url": "",
            "urlPath": "[path] ",
            "urlPattern": "[regex] ",
            "urlPathPattern": "[path regex] ",
            "urlPathTemplate": "[path template] ",
        }[self.kind]
        return prefix + self.value


@dataclass(frozen=True)
class MultipartPattern:
    """One of ``multipartPatterns``: headers and body patterns, for ANY part or ALL parts."""

    matching_type: str
    headers: Mapping[str, MultiValuePattern]
    body_patterns: tuple[ValuePattern, ...]

    def part_matches(self, part: Part) -> bool:
        for name, pattern in self.headers.items():
            if not pattern.matches(part.header_values(name)):
                return False
        return all(
            _body_matches(p, part.body, part.body.decode("utf-8", "replace")) for p in self.body_patterns
        )

    def matches(self, request: Request) -> bool:
        parts = request.parts
        if not parts:
            return False
        if self.matching_type == "ALL":
            return all(self.part_matches(p) for p in parts)
        return any(self.part_matches(p) for p in parts)


def _body_matches(pattern: ValuePattern, body: bytes, text: str) -> bool:
    if isinstance(pattern, BinaryEqualTo):
        return pattern.matches_bytes(body)
    if isinstance(pattern, Absent):
        return not body  # an empty body is an absent one
    return pattern.matches(text)


@dataclass(frozen=True)
class BasicAuthValue(ValuePattern):
    """The Authorization header basicAuth expects: the scheme in any case, the credentials exactly."""

    token: str
    operator = "equalTo"

    def matches(self, value: str | None) -> bool:
        return value is not None and value[:6].lower() == "basic " and value[6:] == self.token

    def distance(self, value: str | None) -> float:
        return 0.0 if self.matches(value) else levenshtein_ratio(f"Basic {self.token}", value or "")

    def to_json(self) -> dict[str, Any]:
        return {"equalTo": f"Basic {self.token}"}


def _as_dict(obj: Any, key: str, pointer: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise InvalidStubError(f"{key} must be an object of name -> match operation", f"{pointer}/{key}")
    return obj


@dataclass(frozen=True, eq=False)
class RequestPattern:
    """A parsed WireMock request pattern; ``raw`` is the JSON it came from (echoed by the admin API)."""

    method: str = "ANY"
    url: UrlMatcher = field(default_factory=lambda: UrlMatcher(None))
    path_parameters: Mapping[str, ValuePattern] = field(default_factory=dict)
    query: Mapping[str, MultiValuePattern] = field(default_factory=dict)
    headers: Mapping[str, MultiValuePattern] = field(default_factory=dict)
    cookies: Mapping[str, ValuePattern] = field(default_factory=dict)
    form: Mapping[str, MultiValuePattern] = field(default_factory=dict)
    body_patterns: tuple[ValuePattern, ...] = ()
    multipart: tuple[MultipartPattern, ...] = ()
    scheme: str | None = None
    host: ValuePattern | None = None
    port: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)

    # -- hot path ----------------------------------------------------------------------------------

    def matches(self, request: Request) -> bool:
        """Whether ``request`` matches every part of this pattern."""
        if self.method != "ANY" and self.method != request.method:
            return False
        if not self.url.matches(request):
            return False
        if self.path_parameters:
            params = self.url.path_parameters(request)
            for name, pattern in self.path_parameters.items():
                if not pattern.matches(params.get(name)):
                    return False
        for name, mv in self.query.items():
            if not mv.matches(request.query.get(name, ())):
                return False
        for name, mv in self.headers.items():
            if not mv.matches(request.header_values(name)):
                return False
        for name, vp in self.cookies.items():
            values = request.cookies.get(name)
            if not (any(vp.matches(v) for v in values) if values else isinstance(vp, Absent)):
                return False  # WireMock: an absent cookie matches only "absent"
        for name, mv in self.form.items():
            if not mv.matches(request.form.get(name, ())):
                return False
        if self.scheme is not None and self.scheme != request.scheme:
            return False
        if self.host is not None and not self.host.matches(request.host):
            return False
        if self.port is not None and self.port != request.port:
            return False
        if self.body_patterns:
            body, text = request.body, request.body_text
            if not all(_body_matches(p, body, text) for p in self.body_patterns):
                return False
        return all(m.matches(request) for m in self.multipart)

    # -- near misses -------------------------------------------------------------------------------

    def evaluate(self, request: Request) -> MatchResult:
        """Every field with its distance (0 = match), for near-miss ranking and diff tables."""
        rows: list[FieldResult] = []
        method_ok = self.method in ("ANY", request.method)
        rows.append(
            FieldResult("method", self.method, request.method, 0.0 if method_ok else 1.0, METHOD_WEIGHT)
        )
        shown = (
            request.path if self.url.kind in ("urlPath", "urlPathPattern", "urlPathTemplate") else request.url
        )
        rows.append(FieldResult("url", self.url.describe(), shown, self.url.distance(request), URL_WEIGHT))
        params = self.url.path_parameters(request)
        for name, vp in self.path_parameters.items():
            actual = params.get(name)
            rows.append(
                FieldResult(f"path parameter {name}", vp.describe(), _show(actual), vp.distance(actual))
            )
        for name, mv in self.query.items():
            values = request.query.get(name, [])
            rows.append(FieldResult(f"query {name}", mv.describe(), _show_many(values), mv.distance(values)))
        for name, mv in self.headers.items():
            values = request.header_values(name)
            rows.append(FieldResult(f"header {name}", mv.describe(), _show_many(values), mv.distance(values)))
        for name, vp in self.cookies.items():
            cvalues = request.cookies.get(name, [])
            d = min((vp.distance(v) for v in cvalues), default=vp.distance(None))
            rows.append(FieldResult(f"cookie {name}", vp.describe(), _show_many(cvalues), d))
        for name, mv in self.form.items():
            values = request.form.get(name, [])
            rows.append(FieldResult(f"form {name}", mv.describe(), _show_many(values), mv.distance(values)))
        if self.scheme is not None:
            rows.append(
                FieldResult(
                    "scheme", self.scheme, request.scheme, 0.0 if self.scheme == request.scheme else 1.0
                )
            )
        if self.host is not None:
            rows.append(
                FieldResult("host", self.host.describe(), request.host, self.host.distance(request.host))
            )
        if self.port is not None:
            rows.append(
                FieldResult(
                    "port", str(self.port), str(request.port), 0.0 if self.port == request.port else 1.0
                )
            )
        for vp in self.body_patterns:
            if isinstance(vp, BinaryEqualTo):
                d = 0.0 if vp.matches_bytes(request.body) else 1.0
            else:
                d = vp.distance(request.body_text)
            rows.append(FieldResult("body", vp.describe(), request.body_text, d))
        for i, mp in enumerate(self.multipart):
            rows.append(
                FieldResult(
                    f"multipart {i}",
                    json.dumps(self.raw.get("multipartPatterns", [])[i]),
                    f"{len(request.parts)} parts",
                    0.0 if mp.matches(request) else 1.0,
                )
            )
        return MatchResult(tuple(rows))

    def to_json(self) -> dict[str, Any]:
        return dict(self.raw)


def _show(value: str | None) -> str:
    return "(absent)" if value is None else value


def _show_many(values: Sequence[str]) -> str:
    if not values:
        return "(absent)"
    return values[0] if len(values) == 1 else ", ".join(values)


def parse_request_pattern(obj: Any, pointer: str = "/request") -> RequestPattern:
    """A RequestPattern from WireMock JSON; InvalidStubError names the JSON pointer of a bad field."""
    if not isinstance(obj, dict):
        raise InvalidStubError("the request pattern must be a JSON object", pointer)
    check_known_keys(obj, REQUEST_KEYS, pointer, "request pattern")
    url_keys = [k for k in URL_KEYS if obj.get(k) is not None]
    if len(url_keys) > 1:
        raise InvalidStubError(
            f"only one of {', '.join(URL_KEYS)} may be given, got {', '.join(url_keys)}", pointer
        )
    kw: dict[str, Any] = {"raw": obj}
    method = obj.get("method")
    if method is not None:
        if not isinstance(method, str) or not method:
            raise InvalidStubError(
                f'method must be a string such as "GET", got {json.dumps(method)}', f"{pointer}/method"
            )
        kw["method"] = method  # WireMock compares methods as given: "put" never matches PUT
    if url_keys:
        key = url_keys[0]
        value = obj[key]
        if not isinstance(value, str):
            raise InvalidStubError(f"{key} must be a string, got {json.dumps(value)}", f"{pointer}/{key}")
        if key in ("urlPattern", "urlPathPattern"):
            try:
                re.compile(value)
            except re.error as exc:
                raise InvalidStubError(
                    f"{key} {value!r} is not a valid regular expression: {exc}", f"{pointer}/{key}"
                ) from exc
        kw["url"] = UrlMatcher(key, value)
    if obj.get("pathParameters") is not None:
        if kw.get("url") is None or kw["url"].kind != "urlPathTemplate":
            raise InvalidStubError(
                'pathParameters need a urlPathTemplate such as "/orders/{id}"', f"{pointer}/pathParameters"
            )
        names = kw["url"]._template[1]
        pp = _as_dict(obj["pathParameters"], "pathParameters", pointer)
        for name in pp:
            if name not in names:
                raise InvalidStubError(
                    f"path parameter {name!r} is not in the template {kw['url'].value!r}",
                    f"{pointer}/pathParameters/{name}",
                )
        kw["path_parameters"] = {
            k: parse_value_pattern(v, f"{pointer}/pathParameters/{k}") for k, v in pp.items()
        }
    for key, attr in (("queryParameters", "query"), ("headers", "headers"), ("formParameters", "form")):
        if obj.get(key) is not None:
            table = _as_dict(obj[key], key, pointer)
            kw[attr] = {k: parse_multi_value_pattern(v, f"{pointer}/{key}/{k}") for k, v in table.items()}
    if obj.get("cookies") is not None:
        table = _as_dict(obj["cookies"], "cookies", pointer)
        kw["cookies"] = {k: parse_value_pattern(v, f"{pointer}/cookies/{k}") for k, v in table.items()}
    auth = obj.get("basicAuth") or obj.get("basicAuthCredentials")
    if auth:
        if not isinstance(auth, dict) or "username" not in auth or "password" not in auth:
            raise InvalidStubError(
                'basicAuth needs {"username": ..., "password": ...}', f"{pointer}/basicAuth"
            )
        token = base64.b64encode(f"{auth['username']}:{auth['password']}".encode()).decode()
        headers = dict(kw.get("headers", {}))
        headers["Authorization"] = MultiValuePattern(single=BasicAuthValue(token))
        kw["headers"] = headers
    if obj.get("bodyPatterns") is not None:
        bp = obj["bodyPatterns"]
        if not isinstance(bp, list):
            raise InvalidStubError(
                "bodyPatterns must be a list of match operations", f"{pointer}/bodyPatterns"
            )
        kw["body_patterns"] = tuple(
            parse_value_pattern(p, f"{pointer}/bodyPatterns/{i}") for i, p in enumerate(bp)
        )
    if obj.get("multipartPatterns") is not None:
        mps = obj["multipartPatterns"]
        if not isinstance(mps, list):
            raise InvalidStubError("multipartPatterns must be a list", f"{pointer}/multipartPatterns")
        parsed = []
        for i, mp in enumerate(mps):
            where = f"{pointer}/multipartPatterns/{i}"
            if not isinstance(mp, dict):
                raise InvalidStubError("a multipart pattern must be an object", where)
            mtype = str(mp.get("matchingType", "ANY")).upper()
            if mtype not in ("ANY", "ALL"):
                raise InvalidStubError(
                    f"matchingType must be ANY or ALL, got {mtype!r}", f"{where}/matchingType"
                )
            hdrs = {
                k: parse_multi_value_pattern(v, f"{where}/headers/{k}")
                for k, v in (mp.get("headers") or {}).items()
            }
            bodies = tuple(
                parse_value_pattern(p, f"{where}/bodyPatterns/{j}")
                for j, p in enumerate(mp.get("bodyPatterns") or [])
            )
            parsed.append(MultipartPattern(mtype, hdrs, bodies))
        kw["multipart"] = tuple(parsed)
    if obj.get("scheme"):
        kw["scheme"] = str(obj["scheme"])
    if obj.get("host"):
        kw["host"] = parse_value_pattern(obj["host"], f"{pointer}/host")
    if obj.get("port") is not None:
        kw["port"] = int(obj["port"])
    return RequestPattern(**kw)
