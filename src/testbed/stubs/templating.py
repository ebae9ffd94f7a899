"""WireMock response templating ("response-template"): a Handlebars subset, the request model, helpers.

Supported: ``{{path}}`` and ``{{{path}}}`` (both unescaped, as in WireMock 3), ``{{helper args k=v}}``,
sub-expressions ``(helper ...)``, blocks ``#if`` / ``#unless`` / ``#each`` / ``#with`` with ``{{else}}``,
comments. An unknown helper is an ``UnsupportedTemplateHelperError`` naming it, never a silent empty string.
"""

from __future__ import annotations

import base64
import json
import random
import re
import string
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any
from urllib.parse import quote, unquote

from testbed.stubs import bounded_json
from testbed.stubs.dates import _add_offset, java_date_format_to_strftime, parse_datetime
from testbed.stubs.errors import StubError, TemplateLimitError, UnsupportedTemplateHelperError
from testbed.stubs.ids import new_id
from testbed.stubs.jsonpath import compile_jsonpath
from testbed.stubs.request import Request

# --- resource limits ---------------------------------------------------------------------------------
# The admin API is unauthenticated and a template is code: without bounds, `{{range 1 100000000}}` or
# `randomValue length=100000000` grows the server by gigabytes. Over a bound the response is a 500 naming
# the helper and the limit.
MAX_OUTPUT_CHARS = 10_000_000  # one rendered template (a body, a header, a file name)
MAX_ITERATIONS = 100_000  # block iterations ({{#each}}) in one render, nested loops included
MAX_ITEMS = 100_000  # elements a helper may build (range, array)


def _over_limit(what: str, asked: int, limit: int, unit: str) -> TemplateLimitError:
    return TemplateLimitError(
        f"response template: {what} asks for {asked:,} {unit}, over testbed's limit of {limit:,} {unit} "
        "per template (a bound that keeps a runaway template from exhausting the server); ask for less"
    )


def _check_size(what: str, asked: int, limit: int = MAX_OUTPUT_CHARS, unit: str = "characters") -> int:
    if asked > limit:
        raise _over_limit(what, asked, limit, unit)
    return asked


# --- the request model -------------------------------------------------------------------------------


class MultiValue(list[str]):
    """A header or query parameter: renders as its first value; ``.[n]``, ``.first``, ``.last`` index it."""

    def __str__(self) -> str:
        return self[0] if self else ""


class PathValue(str):
    """``request.path``: renders as the path; ``.[n]`` is a segment, ``.name`` a urlPathTemplate parameter."""

    segments: list[str]
    params: dict[str, str]


class MethodValue(str):
    """``request.method``: prints as the method, but (as in WireMock) is not equal to a plain string."""


class CaseInsensitive(dict[str, Any]):
    def get_ci(self, key: str) -> Any:
        if key in self:
            return self[key]
        low = key.lower()
        for k, v in self.items():
            if k.lower() == low:
                return v
        return None


def request_model(request: Request, path_params: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ``request`` object templates see, with WireMock's field names."""
    segments = [s for s in request.path.split("/") if s]
    path = PathValue(request.path)
    path.segments = segments
    path.params = dict(path_params or {})
    headers = CaseInsensitive()
    for k, v in request.headers:
        headers.setdefault(k, MultiValue()).append(v)
    return {
        "id": request.id,
        "url": request.url,
        "path": path,
        "pathSegments": segments,
        "query": {k: MultiValue(v) for k, v in request.query.items()},
        "method": MethodValue(request.method),
        "headers": headers,
        "cookies": {k: MultiValue(v) for k, v in request.cookies.items()},
        "body": request.body_text,
        "bodyAsBase64": base64.b64encode(request.body).decode(),
        "baseUrl": request.base_url,
        "scheme": request.scheme,
        "host": request.host,
        "port": request.port,
        "clientIp": request.client_ip,
        "form": {k: MultiValue(v) for k, v in request.form.items()},
        "parts": {},
    }


# --- parsing -----------------------------------------------------------------------------------------


@dataclass
class Text:
    text: str


@dataclass
class Expr:
    """A helper call or a path: ``name`` then positional ``args`` and ``hash`` arguments."""

    name: Any  # a token (path string, literal) or a nested Expr
    args: list[Any] = field(default_factory=list)
    hash: dict[str, Any] = field(default_factory=dict)


@dataclass
class Mustache:
    expr: Expr
    escape: bool


@dataclass
class Block:
    name: str
    expr: Expr
    body: list[Any]
    inverse: list[Any]


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class Path:
    parts: tuple[str, ...]
    raw: str


def _tags(src: str) -> Iterator[tuple[int, int, bool, str]]:
    """Each ``{{...}}`` / ``{{{...}}}``: (start, end, raw, inner); quotes may hold braces: '{"a":{}}'."""
    pos = 0
    while True:
        start = src.find("{{", pos)
        if start < 0:
            return
        if src.startswith("{{!--", start):
            end = src.find("--}}", start)
            end = len(src) if end < 0 else end + 4
            yield start, end, False, "!"
            pos = end
            continue
        raw = src.startswith("{{{", start)
        i = start + (3 if raw else 2)
        close = "}}}" if raw else "}}"
        quote = ""
        while i < len(src):
            c = src[i]
            if quote:
                if c == quote:
                    quote = ""
            elif c in "'\"":
                quote = c
            elif src.startswith(close, i):
                break
            i += 1
        inner = src[start + (3 if raw else 2) : i].strip("~") if not raw else src[start + 3 : i]
        yield start, min(i + len(close), len(src)), raw, inner
        pos = i + len(close)


_TOKEN = re.compile(r"""\s*(?:(\()|(\))|'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"|([^\s()=]+)=|([^\s()]+))""")


def _tokenize(src: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    src = src.strip()
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if not m or m.end() == pos:
            break
        pos = m.end()
        if m.group(1):
            out.append(("(", "("))
        elif m.group(2):
            out.append((")", ")"))
        elif m.group(3) is not None:
            out.append(("str", m.group(3).replace("\\'", "'")))
        elif m.group(4) is not None:
            out.append(("str", m.group(4).replace('\\"', '"')))
        elif m.group(5):
            out.append(("key", m.group(5)))
        elif m.group(6):
            out.append(("word", m.group(6)))
    return out


def _atom(tok: tuple[str, str]) -> Any:
    kind, value = tok
    if kind == "str":
        return Literal(value)
    if value in ("true", "false"):
        return Literal(value == "true")
    if value in ("null", "undefined"):
        return Literal(None)
    if re.fullmatch(r"-?\d+", value):
        return Literal(int(value))
    if re.fullmatch(r"-?\d+\.\d+", value):
        return Literal(float(value))
    return _path(value)


def _path(raw: str) -> Path:
    parts: list[str] = []
    for piece in re.findall(r"\[[^\]]*\]|[^.\[\]]+", raw):
        parts.append(piece[1:-1] if piece.startswith("[") else piece)
    return Path(tuple(parts), raw)


def _parse_expr(tokens: list[tuple[str, str]], pos: int = 0, stop_at_paren: bool = False) -> tuple[Expr, int]:
    items: list[Any] = []
    hash_args: dict[str, Any] = {}
    while pos < len(tokens):
        kind, value = tokens[pos]
        if kind == ")":
            if stop_at_paren:
                pos += 1
                break
            pos += 1
            continue
        if kind == "key":
            pos += 1
            if pos < len(tokens) and tokens[pos][0] == "(":
                sub, pos = _parse_expr(tokens, pos + 1, True)
                hash_args[value] = sub
            elif pos < len(tokens):
                hash_args[value] = _atom(tokens[pos])
                pos += 1
            continue
        if kind == "(":
            sub, pos = _parse_expr(tokens, pos + 1, True)
            items.append(sub)
            continue
        if kind == "word" and value == "as":  # `as |x|` block params: keep simple
            break
        items.append(_atom(tokens[pos]))
        pos += 1
    if not items:
        return Expr(Literal("")), pos
    return Expr(items[0], items[1:], hash_args), pos


@lru_cache(maxsize=256)  # a stub's template is rendered for every request it serves
def parse_template(src: str) -> list[Any]:
    """Parse a Handlebars template into nodes (Text / Mustache / Block)."""
    root: list[Any] = []
    stack: list[tuple[str, Expr, list[Any], list[Any], list[Any]]] = []
    current = root
    pos = 0
    for start, end, raw, text in _tags(src):
        if start > pos:
            current.append(Text(src[pos:start]))
        pos = end
        if raw:
            current.append(Mustache(_parse_expr(_tokenize(text))[0], False))
            continue
        inner = text.strip()
        if inner.startswith("!"):
            continue
        if inner.startswith("#"):
            tokens = _tokenize(inner[1:])
            name = tokens[0][1] if tokens else ""
            expr, _ = _parse_expr(tokens[1:])
            if not tokens[1:]:
                expr = Expr(Literal(None))
            body: list[Any] = []
            stack.append((name, expr, body, [], current))
            current = body
            continue
        if inner == "else" or inner.startswith("else "):
            if stack:
                name, expr, body, inverse, parent = stack[-1]
                current = inverse
            continue
        if inner.startswith("/"):
            if not stack:
                raise UnsupportedTemplateHelperError(f"response template has a stray {{{{{inner}}}}}")
            name, expr, body, inverse, parent = stack.pop()
            parent.append(Block(name, expr, body, inverse))
            current = parent
            continue
        if inner.startswith("&"):
            current.append(Mustache(_parse_expr(_tokenize(inner[1:]))[0], False))
            continue
        current.append(Mustache(_parse_expr(_tokenize(inner))[0], True))
    if stack:
        raise UnsupportedTemplateHelperError(
            f"response template: block {{{{#{stack[-1][0]}}}}} is never closed"
        )
    if pos < len(src):
        current.append(Text(src[pos:]))
    return root


# --- evaluation --------------------------------------------------------------------------------------


def to_text(value: Any) -> str:
    """How Handlebars (Java) prints a value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(value)
    if isinstance(value, MultiValue | PathValue):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(to_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={to_text(v)}" for k, v in value.items()) + "}"
    return str(value)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value != "" and value != "false"
    return bool(value) if value is not None else False


@dataclass
class Scope:
    value: Any
    parent: Scope | None = None
    data: dict[str, Any] = field(default_factory=dict)


def _lookup(obj: Any, key: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, _JsonText):  # structures from jsonPath / parseJson walk like their JSON value
        obj = obj.value
    if isinstance(obj, PathValue):
        if key.isdigit():
            i = int(key)
            return obj.segments[i] if i < len(obj.segments) else None
        return obj.params.get(key)
    if isinstance(obj, CaseInsensitive):
        return obj.get_ci(key)
    if isinstance(obj, dict):
        return obj.get(key)
    if isinstance(obj, list):
        if key.lstrip("-").isdigit():
            i = int(key)
            return obj[i] if -len(obj) <= i < len(obj) else None
        if key == "first":
            return obj[0] if obj else None
        if key == "last":
            return obj[-1] if obj else None
        if key in ("size", "length"):
            return len(obj)
        return None
    if key == "length" and isinstance(obj, str):
        return len(obj)
    return getattr(obj, key, None) if not key.startswith("_") else None


class Renderer:
    """Renders parsed templates against a root context; helpers are looked up in ``HELPERS``."""

    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = dict(root)
        self.output_chars = 0  # text emitted so far (leaves only: a block's text is counted once)
        self.iterations = 0

    def _emit(self, text: str) -> str:
        self.output_chars += len(text)
        if self.output_chars > MAX_OUTPUT_CHARS:
            raise _over_limit("the rendered output", self.output_chars, MAX_OUTPUT_CHARS, "characters")
        return text

    def _iterate(self, name: str, count: int) -> None:
        self.iterations += count
        if self.iterations > MAX_ITERATIONS:
            raise _over_limit(f"{{{{#{name}}}}}", self.iterations, MAX_ITERATIONS, "loop iterations")

    def render(self, nodes: Sequence[Any], scope: Scope) -> str:
        out: list[str] = []
        for node in nodes:
            if isinstance(node, Text):
                out.append(self._emit(node.text))
            elif isinstance(node, Mustache):
                text = to_text(self.eval_expr(node.expr, scope, top=True))
                out.append(self._emit(text))  # WireMock 3 configures Handlebars without HTML escaping
            else:
                out.append(self.block(node, scope))
        return "".join(out)

    def resolve(self, item: Any, scope: Scope) -> Any:
        if isinstance(item, Literal):
            return item.value
        if isinstance(item, Expr):
            return self.eval_expr(item, scope, top=False)
        assert isinstance(item, Path)
        parts = list(item.parts)
        if not parts:
            return None
        s: Scope | None
        if parts[0].startswith("@"):
            s = scope
            while s is not None:
                if parts[0][1:] in s.data:
                    return _walk(s.data[parts[0][1:]], parts[1:])
                s = s.parent
            return None
        while parts and parts[0] == "..":
            scope = scope.parent or scope
            parts = parts[1:]
        if parts and parts[0] == "this":
            return _walk(scope.value, parts[1:])
        s = scope
        while s is not None:
            found = _lookup(s.value, parts[0])
            if found is not None:
                return _walk(found, parts[1:])
            s = s.parent
        return _walk(self.root.get(parts[0]), parts[1:])

    def eval_expr(self, expr: Expr, scope: Scope, *, top: bool) -> Any:
        head = expr.name
        if isinstance(head, Path) and len(head.parts) == 1 and head.raw in HELPERS:
            args = [self.resolve(a, scope) for a in expr.args]
            hash_args = {k: self.resolve(v, scope) for k, v in expr.hash.items()}
            return call_helper(head.raw, args, hash_args)
        if isinstance(head, Path) and (expr.args or expr.hash) and len(head.parts) == 1:
            raise UnsupportedTemplateHelperError(
                f"response template uses the Handlebars helper {head.raw!r}, which testbed does not support. "
                f"Supported helpers: {', '.join(sorted(HELPERS))}."
            )
        if isinstance(head, Path) and len(head.parts) == 1 and head.raw in UNSUPPORTED:
            raise UnsupportedTemplateHelperError(
                f"response template uses the Handlebars helper {head.raw!r}, which testbed does not support."
            )
        return self.resolve(head, scope)

    def block(self, node: Block, scope: Scope) -> str:
        name = node.name
        if name in ("if", "unless"):
            value = self.eval_expr(node.expr, scope, top=False)
            truth = _truthy(value) if name == "if" else not _truthy(value)
            return self.render(node.body if truth else node.inverse, scope)
        if name == "with":
            value = self.eval_expr(node.expr, scope, top=False)
            if isinstance(value, _JsonText):
                value = value.value
            if not _truthy(value):
                return self.render(node.inverse, scope)
            return self.render(node.body, Scope(value, scope))
        if name == "each":
            value = self.eval_expr(node.expr, scope, top=False)
            if isinstance(value, _JsonText):
                value = value.value
            items: list[tuple[Any, Any]]
            if isinstance(value, dict):
                items = list(value.items())
            elif isinstance(value, list):
                items = list(enumerate(value))
            else:
                items = []
            if not items:
                return self.render(node.inverse, scope)
            self._iterate(name, len(items))
            out = []
            for i, (key, item) in enumerate(items):
                data = {"index": i, "key": key, "first": i == 0, "last": i == len(items) - 1}
                out.append(self.render(node.body, Scope(item, scope, data)))
            return "".join(out)
        if name in HELPERS:  # block form of a comparison helper: {{#eq a b}}yes{{else}}no{{/eq}}
            args = [self.resolve(a, scope) for a in [node.expr.name, *node.expr.args]]
            hash_args = {k: self.resolve(v, scope) for k, v in node.expr.hash.items()}
            result = call_helper(name, args, hash_args)
            return self.render(node.body if _truthy(result) else node.inverse, scope)
        raise UnsupportedTemplateHelperError(
            f"response template uses the block helper {{{{#{name}}}}}, which testbed does not support. "
            "Supported blocks: if, unless, each, with, and the comparison helpers (eq, neq, gt, lt, ...)."
        )


def _walk(value: Any, parts: Sequence[str]) -> Any:
    for p in parts:
        value = _lookup(value, p)
    return value


# --- helpers -----------------------------------------------------------------------------------------

Helper = Callable[[list[Any], dict[str, Any]], Any]

_RANDOM_ALPHABETS = {
    "ALPHANUMERIC": string.ascii_letters + string.digits,
    "ALPHABETIC": string.ascii_letters,
    "NUMERIC": string.digits,
    "HEXADECIMAL": "0123456789abcdef",
    "ALPHANUMERIC_AND_SYMBOLS": string.ascii_letters + string.digits + "!@#$%^&*()-_=+[]{};:,.<>/?",
}


def _random_value(args: list[Any], kw: dict[str, Any]) -> Any:
    kind = str(kw.get("type", "ALPHANUMERIC")).upper()
    if kind == "UUID":
        return new_id()
    alphabet = _RANDOM_ALPHABETS.get(kind)
    if alphabet is None:
        raise UnsupportedTemplateHelperError(
            f"randomValue type={kind!r} is not supported; use one of "
            f"{', '.join([*_RANDOM_ALPHABETS, 'UUID'])}"
        )
    length = _check_size("randomValue length", int(kw.get("length", 36)))
    value = "".join(random.choices(alphabet, k=length))
    return value.upper() if kw.get("uppercase") else value


def _format_date(dt: datetime, fmt: Any, tz: Any = None) -> Any:
    if tz:
        import zoneinfo

        dt = dt.astimezone(zoneinfo.ZoneInfo(str(tz)))
    if fmt is None:
        if dt.utcoffset() == timedelta(0):
            return dt.strftime("%Y-%m-%dT%H:%M:%S") + "Z"
        return dt.isoformat(timespec="seconds")
    if fmt == "epoch":
        return int(dt.timestamp() * 1000)
    if fmt == "unix":
        return int(dt.timestamp())
    out = dt.strftime(java_date_format_to_strftime(str(fmt)))
    return out.replace("%f", f"{dt.microsecond // 1000:03d}")


def _offset(dt: datetime, offset: Any) -> datetime:
    if not offset:
        return dt
    m = re.fullmatch(r"\s*(-?\d+)\s+(\w+)\s*", str(offset))
    if not m:
        raise UnsupportedTemplateHelperError(f"now offset={offset!r}: use e.g. offset='3 days' or '-1 hours'")
    return _add_offset(dt, int(m.group(1)), m.group(2))


def _now(args: list[Any], kw: dict[str, Any]) -> Any:
    return _format_date(_offset(datetime.now(UTC), kw.get("offset")), kw.get("format"), kw.get("timezone"))


def _date(args: list[Any], kw: dict[str, Any]) -> Any:
    value = args[0] if args else None
    dt = value if isinstance(value, datetime) else parse_datetime(str(value)) if value is not None else None
    if dt is None:
        return ""
    return _format_date(_offset(dt, kw.get("offset")), kw.get("format"), kw.get("timezone"))


def _parse_date(args: list[Any], kw: dict[str, Any]) -> Any:
    return parse_datetime(str(args[0]), kw.get("format")) if args else None


def _json_path(args: list[Any], kw: dict[str, Any]) -> Any:
    if len(args) < 2:
        raise UnsupportedTemplateHelperError(
            "jsonPath needs a JSON document and an expression: {{jsonPath request.body '$.id'}}"
        )
    doc = args[0]
    if isinstance(doc, str):
        try:
            doc = bounded_json.loads(doc)
        except ValueError:
            return kw.get("default", "")
    found = compile_jsonpath(str(args[1]))(doc)
    expr = str(args[1])
    if not found:
        return kw.get("default", "")
    definite = not any(t in expr for t in ("[*]", "..", "?(", ":")) and "," not in expr
    value = found[0] if definite and len(found) == 1 else found
    if isinstance(value, dict | list):
        return _JsonText(value)
    return value


class _JsonText(str):
    """A JSON value from jsonPath / parseJson: prints as JSON and still walks like a structure."""

    value: Any

    def __new__(cls, value: Any) -> _JsonText:
        obj = super().__new__(cls, json.dumps(value, separators=(",", ":")))
        obj.value = value
        return obj


def _math(args: list[Any], kw: dict[str, Any]) -> Any:
    a, op, b = (args + [None, None, None])[:3]
    x, y = _num(a), _num(b)
    ops: dict[str, Callable[[float, float], float]] = {
        "+": lambda p, q: p + q,
        "-": lambda p, q: p - q,
        "*": lambda p, q: p * q,
        "/": lambda p, q: p / q,
        "%": lambda p, q: p % q,
    }
    if op not in ops:
        raise UnsupportedTemplateHelperError(f"math operator {op!r} is not supported; use + - * / %")
    if op == "/" and isinstance(x, int) and isinstance(y, int):
        # BigDecimal division at the dividend's scale, rounding half up: 7 / 2 = 4, as in WireMock
        return int((Decimal(x) / Decimal(y)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    result = ops[str(op)](x, y)
    if isinstance(result, float) and result.is_integer() and op != "/":
        return int(result)
    return result


def _num(v: Any) -> Any:
    if isinstance(v, int | float):
        return v
    s = str(v)
    try:
        return int(s)
    except ValueError:
        return float(s)


def _cmp(fn: Callable[[Any, Any], bool]) -> Helper:
    def helper(args: list[Any], kw: dict[str, Any]) -> Any:
        a, b = (args + [None, None])[:2]
        try:
            return fn(_num(a), _num(b))
        except (TypeError, ValueError):
            return fn(to_text(a), to_text(b))

    return helper


_MODEL_VALUES = (MultiValue, PathValue, MethodValue)


def _eq(args: list[Any], kw: dict[str, Any]) -> Any:
    a, b = (args + [None, None])[:2]
    # WireMock's request model values are objects: `eq request.method 'GET'` is false there, while
    # `eq request.query.a.[0] 'x'` is true. Same here, so templates behave the same on both servers.
    if isinstance(a, _MODEL_VALUES) != isinstance(b, _MODEL_VALUES):
        return False
    return to_text(a) == to_text(b)


def _size(args: list[Any], kw: dict[str, Any]) -> Any:
    v = args[0] if args else None
    if isinstance(v, _JsonText):
        v = v.value
    return len(v) if v is not None else 0


def _base64(args: list[Any], kw: dict[str, Any]) -> Any:
    text = to_text(args[0]) if args else ""
    if kw.get("decode"):
        return base64.b64decode(text).decode("utf-8", "replace")
    out = base64.b64encode(text.encode()).decode()
    return out.rstrip("=") if kw.get("padding") is False else out


def _url_encode(args: list[Any], kw: dict[str, Any]) -> Any:
    text = to_text(args[0]) if args else ""
    return unquote(text.replace("+", " ")) if kw.get("decode") else quote(text, safe="").replace("%20", "+")


def _regex_extract(args: list[Any], kw: dict[str, Any]) -> Any:
    text, regex = to_text(args[0]), str(args[1])
    found = re.search(regex, text)
    if not found:
        return kw.get("default", "")
    return found.group(1) if found.groups() else found.group(0)


def _xpath(args: list[Any], kw: dict[str, Any]) -> Any:
    from lxml import etree

    from testbed.stubs.xml_operators import _xml_parse, _xpath_text

    doc = _xml_parse(to_text(args[0]))
    result = etree.XPath(str(args[1]))(doc)
    if isinstance(result, list):
        return _xpath_text(result[0]) if result else ""
    return _xpath_text(result)


def _parse_json(args: list[Any], kw: dict[str, Any]) -> Any:
    return bounded_json.loads(to_text(args[0])) if args else None


def jackson_pretty(value: Any, indent: int = 0) -> str:
    """JSON as Jackson's default pretty printer writes it (WireMock's formatJson / toJson)."""
    pad = "  " * (indent + 1)
    if isinstance(value, dict):
        if not value:
            return "{ }"
        items = [f"{pad}{json.dumps(k)} : {jackson_pretty(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * indent + "}"
    if isinstance(value, list):
        if not value:
            return "[ ]"
        return "[ " + ", ".join(jackson_pretty(v, indent) for v in value) + " ]"
    return json.dumps(value, ensure_ascii=False)


def _json_arg(value: Any) -> Any:
    if isinstance(value, _JsonText):
        return value.value
    if isinstance(value, str):
        try:
            return bounded_json.loads(value)
        except ValueError:
            return value
    return value


def _to_json(args: list[Any], kw: dict[str, Any]) -> Any:
    return jackson_pretty(_json_arg(args[0] if args else None))


def _format_json(args: list[Any], kw: dict[str, Any]) -> Any:
    value = _json_arg(args[0] if args else None)
    if kw.get("format") == "compact":
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return jackson_pretty(value)


def _merge(base: Any, extra: Any) -> Any:
    if isinstance(base, dict) and isinstance(extra, dict):
        out = dict(base)
        for k, v in extra.items():
            out[k] = _merge(out[k], v) if k in out else v
        return out
    return extra


def _json_merge(args: list[Any], kw: dict[str, Any]) -> Any:
    base, extra = (_json_arg(a) for a in (args + [None, None])[:2])
    return json.dumps(_merge(base, extra), separators=(",", ":"), ensure_ascii=False)


def _lookup_helper(args: list[Any], kw: dict[str, Any]) -> Any:
    obj, key = (args + [None, None])[:2]
    return _lookup(_json_arg(obj) if isinstance(obj, _JsonText) else obj, to_text(key))


def _val(args: list[Any], kw: dict[str, Any]) -> Any:
    value = args[0] if args else None
    return value if value is not None else kw.get("default", kw.get("or"))


def _range(args: list[Any], kw: dict[str, Any]) -> Any:
    lo, hi = int(_num(args[0])), int(_num(args[1]))
    _check_size(f"range {lo} {hi}", hi - lo + 1, MAX_ITEMS, "elements")
    return list(range(lo, hi + 1))


def _abbreviate(args: list[Any], kw: dict[str, Any]) -> Any:
    text, width = to_text(args[0]), int(args[1])
    return text if len(text) <= width else text[: max(0, width - 3)] + "..."


def _join(args: list[Any], kw: dict[str, Any]) -> Any:
    if len(args) >= 2 and isinstance(args[-1], str) and isinstance(args[0], list):
        return args[-1].join(to_text(a) for a in args[0])
    sep = args[0] if args and isinstance(args[0], str) and len(args) > 1 else ","
    items = args[1] if len(args) > 1 and isinstance(args[1], list) else args[1:]
    return str(sep).join(to_text(a) for a in items)


def _contains(args: list[Any], kw: dict[str, Any]) -> Any:
    hay, needle = (args + [None, None])[:2]
    if isinstance(hay, PathValue):  # WireMock's path is a list of segments to `contains`
        return to_text(needle) in hay.segments
    if isinstance(hay, list):
        return needle in hay
    return to_text(needle) in to_text(hay)


def _substring(args: list[Any], kw: dict[str, Any]) -> Any:
    text = to_text(args[0])
    start = int(args[1]) if len(args) > 1 else 0
    end = int(args[2]) if len(args) > 2 else len(text)
    return text[start:end]


def _default(args: list[Any], kw: dict[str, Any]) -> Any:
    value, fallback = (args + [None, None])[:2]
    return value if _truthy(value) else fallback


def _pick_random(args: list[Any], kw: dict[str, Any]) -> Any:
    items = args[0] if len(args) == 1 and isinstance(args[0], list) else args
    return random.choice(items) if items else ""


def _random_int(args: list[Any], kw: dict[str, Any]) -> Any:
    return random.randint(int(kw.get("lower", 0)), int(kw.get("upper", 2**31 - 1)))


def _random_decimal(args: list[Any], kw: dict[str, Any]) -> Any:
    return random.uniform(float(kw.get("lower", 0.0)), float(kw.get("upper", 1.0)))


HELPERS: dict[str, Helper] = {
    "jsonPath": _json_path,
    "randomValue": _random_value,
    "randomInt": _random_int,
    "randomDecimal": _random_decimal,
    "now": _now,
    "date": _date,
    "parseDate": _parse_date,
    "math": _math,
    "eq": _eq,
    "neq": lambda a, k: not _eq(a, k),
    "gt": _cmp(lambda x, y: bool(x > y)),
    "gte": _cmp(lambda x, y: bool(x >= y)),
    "lt": _cmp(lambda x, y: bool(x < y)),
    "lte": _cmp(lambda x, y: bool(x <= y)),
    "and": lambda a, k: all(_truthy(x) for x in a),
    "or": lambda a, k: any(_truthy(x) for x in a),
    "not": lambda a, k: not _truthy(a[0] if a else None),
    "upper": lambda a, k: to_text(a[0]).upper() if a else "",
    "lower": lambda a, k: to_text(a[0]).lower() if a else "",
    "capitalize": lambda a, k: " ".join(w[:1].upper() + w[1:] for w in to_text(a[0]).split(" ")) if a else "",
    "trim": lambda a, k: to_text(a[0]).strip() if a else "",
    "size": _size,
    "base64": _base64,
    "urlEncode": _url_encode,
    "regexExtract": _regex_extract,
    "xPath": _xpath,
    "parseJson": _parse_json,
    "toJson": _to_json,
    "formatJson": _format_json,
    "jsonMerge": _json_merge,
    "lookup": _lookup_helper,
    "val": _val,
    "range": _range,
    "abbreviate": _abbreviate,
    "join": _join,
    "contains": _contains,
    "matches": lambda a, k: re.fullmatch(str(a[1]), to_text(a[0])) is not None,
    "replace": lambda a, k: to_text(a[0]).replace(to_text(a[1]), to_text(a[2])),
    "substring": _substring,
    "defaultIfEmpty": _default,
    "default": _default,
    "pickRandom": _pick_random,
    "array": lambda a, k: list(a),
    "split": lambda a, k: to_text(a[0]).split(to_text(a[1])),
    "isOdd": lambda a, k: int(a[0]) % 2 == 1,
    "isEven": lambda a, k: int(a[0]) % 2 == 0,
}
# Real WireMock helpers that testbed deliberately does not implement: named so the error is clear.
UNSUPPORTED = frozenset(
    {
        "systemValue",
        "hostname",
        "soapXPath",
        "formatXml",
        "jsonRemove",
        "jsonSort",
        "jsonArrayAdd",
        "assign",
        "arrayAdd",
        "arrayRemove",
        "formData",
        "fileContent",
    }
)


def call_helper(name: str, args: list[Any], hash_args: dict[str, Any]) -> Any:
    """Run one helper; a failure inside it becomes a StubError naming the helper (never a traceback)."""
    try:
        return HELPERS[name](args, hash_args)
    except StubError:
        raise
    except Exception as exc:  # bad arguments from a template: the user's input, reported as such
        raise StubError(f"response template: helper {name!r} failed: {type(exc).__name__}: {exc}") from exc


def render(
    template: str,
    request: Request,
    *,
    path_params: Mapping[str, str] | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> str:
    """Render ``template`` for ``request`` (WireMock's request model plus ``parameters``).

    Webhooks see the request that triggered them as ``originalRequest`` (and as ``request``).
    """
    nodes = parse_template(template)
    model = request_model(request, path_params)
    root = {"request": model, "originalRequest": model, "parameters": dict(parameters or {})}
    return Renderer(root).render(nodes, Scope(root))
