"""WireMock response templating ("response-template"): Handlebars as WireMock's Handlebars.java runs it.

The engine: ``{{path}}`` / ``{{{path}}}`` (no HTML escaping, as WireMock's standalone), helpers with
positional and ``key=value`` arguments, sub-expressions ``(helper ...)``, blocks with ``{{else}}`` and
``{{else if ...}}`` chains, block parameters (``{{#each list as |item i|}}``), inverted sections
``{{^x}}``, ``@index`` / ``@key`` / ``@first`` / ``@last``, ``../`` paths, comments and ``~`` whitespace
control. Values print as Java prints them (``3.0``, ``[a, b]``, ``{k=v}``), because that
is what WireMock users see. The helpers are in ``template_helpers``; an unknown one is an error naming it.

Rendering is bounded (output size, loop iterations, sizes helpers may build): see the limits below.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from testbed.stubs.errors import StubError, TemplateLimitError, UnsupportedTemplateHelperError
from testbed.stubs.java_text import double_text, java_hash_order
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


def check_size(what: str, asked: int, limit: int = MAX_OUTPUT_CHARS, unit: str = "characters") -> int:
    """``asked`` if within ``limit``, else a TemplateLimitError naming ``what``."""
    if asked > limit:
        raise _over_limit(what, asked, limit, unit)
    return asked


class TemplateError(StubError):
    """A template that cannot be parsed or rendered (WireMock answers these with a 500 too)."""


# --- values as WireMock's template model holds them ----------------------------------------------------


class ListOrSingle(list[Any]):
    """A header, query parameter or cookie: prints as its first value; ``.[n]``, ``.first``, ``.last``."""

    def __str__(self) -> str:
        return to_text(self[0]) if self else ""


class UrlPath(str):
    """``request.path`` / ``request.pathSegments``: prints as the path; ``.[n]`` is a segment, ``.name`` a
    urlPathTemplate parameter."""

    segments: list[str]
    params: dict[str, str]


class RequestMethod(str):
    """``request.method``: prints as the method but (an enum in WireMock) is not equal to a string."""


class JavaMap(dict[str, Any]):
    """A map that iterates and prints in the order a Java HashMap would (the query and cookie maps)."""

    def ordered_keys(self) -> list[str]:
        return java_hash_order(list(self))


class CaseInsensitiveMap(dict[str, Any]):
    """The headers: case-insensitive lookup, sorted case-insensitively (a Java TreeMap)."""

    def lookup(self, key: str) -> Any:
        if key in self:
            return self[key]
        low = key.lower()
        return next((v for k, v in self.items() if k.lower() == low), None)

    def ordered_keys(self) -> list[str]:
        return sorted(self, key=str.lower)


class JsonObject(dict[str, Any]):
    """A JSON object from jsonPath: prints as pretty JSON (WireMock's MapJsonData)."""


class JsonArray(list[Any]):
    """A JSON array from jsonPath: prints as compact JSON (WireMock's ListJsonData)."""


def ordered_items(value: Mapping[str, Any]) -> list[tuple[str, Any]]:
    keys = value.ordered_keys() if isinstance(value, JavaMap | CaseInsensitiveMap) else list(value)
    return [(k, value[k]) for k in keys]


def request_model(request: Request, path_params: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ``request`` object templates see, with WireMock's field names."""
    path = UrlPath(request.path)
    path.segments = [s for s in request.path.split("/") if s]
    path.params = dict(path_params or {})
    headers = CaseInsensitiveMap()
    for k, v in request.headers:
        existing = headers.lookup(k)
        if existing is None:
            headers[k] = ListOrSingle([v])
        else:
            existing.append(v)
    return {
        "id": request.id,
        "url": request.url,
        "path": path,
        "pathSegments": path,
        "query": JavaMap({k: ListOrSingle(v) for k, v in request.query.items()}),
        "method": RequestMethod(request.method),
        "headers": headers,
        "cookies": JavaMap({k: ListOrSingle(v) for k, v in request.cookies.items()}),
        "body": request.body_text,
        "bodyAsBase64": base64.b64encode(request.body).decode(),
        "baseUrl": request.base_url,
        "scheme": request.scheme,
        "host": request.host,
        "port": request.port,
        "clientIp": request.client_ip,
        "multipart": bool(request.parts),
        "parts": {},
    }


def to_text(value: Any) -> str:
    """How WireMock prints a value: Java's toString of what its template model holds."""
    if value is None:
        return ""
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return double_text(value)
    if isinstance(value, ListOrSingle):
        return str(value)
    if isinstance(value, JsonObject):
        from testbed.stubs.template_helpers import jackson_pretty

        return jackson_pretty(dict(value))
    if isinstance(value, JsonArray):
        return json.dumps(list(value), separators=(",", ":"), ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(to_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={to_text(v)}" for k, v in ordered_items(value)) + "}"
    return str(value)


def is_empty(value: Any) -> bool:
    """Handlebars.java's falsy: null, "", empty list or map, false, and zero."""
    if value is None:
        return True
    if isinstance(value, str):
        return value == ""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value == 0
    if isinstance(value, list | tuple | dict):
        return len(value) == 0
    return False


# --- parsing -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class PathExpr:
    parts: tuple[str, ...]
    raw: str
    up: int = 0  # how many ../
    data: bool = False  # @index, @key...
    this: bool = False  # starts with this or .


@dataclass
class Call:
    """A helper call or a value: ``head`` then positional ``params`` and ``hash`` arguments."""

    head: Any  # PathExpr, Literal or Call (a sub-expression)
    params: list[Any] = field(default_factory=list)
    hash: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str | None:
        h = self.head
        if isinstance(h, PathExpr) and len(h.parts) == 1 and not h.up and not h.data and not h.this:
            return h.parts[0]
        return None


@dataclass
class Text:
    text: str


@dataclass
class Mustache:
    call: Call


@dataclass
class Block:
    call: Call
    body: list[Any]
    inverse: list[Any]
    block_params: tuple[str, ...] = ()
    inverted: bool = False  # {{^x}}...{{/x}}
    chained: bool = False  # the {{else if ...}} part of a chain


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<open>\()|(?P<close>\))
        |'(?P<sq>(?:[^'\\]|\\.)*)'|"(?P<dq>(?:[^"\\]|\\.)*)"
        |(?P<key>[^\s()=]+)=(?!=)
        |(?P<word>[^\s()]+)
    )""",
    re.VERBOSE,
)
_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def _unescape(text: str, quote: str) -> str:
    return text.replace("\\" + quote, quote)


def _tokens(src: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    src = src.strip()
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if not m or m.end() == pos:
            raise TemplateError(f"response template: cannot read {src[pos : pos + 20]!r} in {{{{{src}}}}}")
        pos = m.end()
        kind = m.lastgroup or ""
        value = m.group(kind) if kind else ""
        if kind in ("sq", "dq") and pos < len(src) and not (src[pos].isspace() or src[pos] == ")"):
            # '$['weird'] is a string followed by more text: Handlebars refuses it, so does testbed
            raise TemplateError(
                f"response template: in {{{{{src}}}}}, the string {m.group().strip()} is followed by "
                f"{src[pos:pos + 10]!r}; to put quotes inside a string, use the other kind (\"$['a b']\")"
            )
        if kind == "sq":
            out.append(("str", _unescape(value, "'")))
        elif kind == "dq":
            out.append(("str", _unescape(value, '"')))
        else:
            out.append((kind, value))
    return out


def _path(raw: str) -> PathExpr:
    text = raw
    if text.startswith("@"):
        parts = tuple(p for p in re.findall(r"\[[^\]]*\]|[^./\[\]]+", text[1:]))
        return PathExpr(tuple(p[1:-1] if p.startswith("[") else p for p in parts), raw, data=True)
    up = 0
    while text.startswith("../"):
        up += 1
        text = text[3:]
    this = False
    if text in ("this", "."):
        return PathExpr((), raw, up, this=True)
    if text.startswith("this.") or text.startswith("this/"):
        this, text = True, text[5:]
    elif text.startswith("./"):
        this, text = True, text[2:]
    parts = tuple(p[1:-1] if p.startswith("[") else p for p in re.findall(r"\[[^\]]*\]|[^./\[\]]+", text))
    return PathExpr(parts, raw, up, this=this)


def _atom(kind: str, value: str) -> Any:
    if kind == "str":
        return Literal(value)
    if value in ("true", "false"):
        return Literal(value == "true")
    if value in ("null", "undefined"):
        return Literal(None)
    if _NUMBER.fullmatch(value):
        return Literal(float(value) if "." in value else int(value))
    return _path(value)


def _call(tokens: list[tuple[str, str]], pos: int = 0, sub: bool = False) -> tuple[Call, int]:
    items: list[Any] = []
    hash_args: dict[str, Any] = {}
    while pos < len(tokens):
        kind, value = tokens[pos]
        if kind == "close":
            if sub:
                return _make_call(items, hash_args), pos + 1
            raise TemplateError("response template: a ')' without its '('")
        if kind == "key":
            pos += 1
            if pos >= len(tokens):
                raise TemplateError(f"response template: {value}= needs a value")
            if tokens[pos][0] == "open":
                hash_args[value], pos = _call(tokens, pos + 1, True)
            else:
                hash_args[value] = _atom(*tokens[pos])
                pos += 1
            continue
        if kind == "open":
            inner, pos = _call(tokens, pos + 1, True)
            items.append(inner)
            continue
        items.append(_atom(kind, value))
        pos += 1
    if sub:
        raise TemplateError("response template: a '(' is never closed")
    return _make_call(items, hash_args), pos


def _make_call(items: list[Any], hash_args: dict[str, Any]) -> Call:
    if not items:
        raise TemplateError("response template: an empty expression {{}}")
    return Call(items[0], items[1:], hash_args)


def _parse_call(src: str) -> Call:
    return _call(_tokens(src))[0]


def _split_block_params(src: str) -> tuple[str, tuple[str, ...]]:
    m = re.search(r"\s+as\s+\|([^|]*)\|\s*$", src)
    if not m:
        return src, ()
    return src[: m.start()], tuple(m.group(1).split())


def _tags(src: str) -> Iterator[tuple[int, int, str, bool, bool]]:
    """Each tag: (start, end, inner, strip_before, strip_after)."""
    pos = 0
    while True:
        start = src.find("{{", pos)
        if start < 0:
            return
        if src.startswith("{{!--", start):
            end = src.find("--}}", start)
            if end < 0:
                raise TemplateError("response template: a {{!-- comment is never closed")
            yield start, end + 4, "!", False, False
            pos = end + 4
            continue
        triple = src.startswith("{{{", start)
        close = "}}}" if triple else "}}"
        i = start + (3 if triple else 2)
        quote = ""
        while i < len(src):
            c = src[i]
            if quote:
                if c == "\\":
                    i += 2
                    continue
                if c == quote:
                    quote = ""
            elif c in "'\"":
                quote = c
            elif src.startswith(close, i):
                break
            i += 1
        if i >= len(src):
            raise TemplateError(f"response template: the tag at position {start} is never closed with {close}")
        if not triple and src.startswith("}}}", i):
            # Handlebars reads }}} as the end of a {{{ tag: `"n": {{x}}}` is an error in WireMock too
            raise TemplateError(
                f"response template: {src[start:i + 3]!r} closes a {{{{ tag with }}}}}}; "
                "put a space before the last } (e.g. {{x}} })"
            )
        inner = src[start + (3 if triple else 2) : i]
        strip_before = inner.startswith("~")
        strip_after = inner.endswith("~")
        inner = inner.strip("~")
        if triple:
            inner = "&" + inner
        yield start, i + len(close), inner, strip_before, strip_after
        pos = i + len(close)


@lru_cache(maxsize=512)  # a stub's template is rendered for every request it serves
def parse_template(src: str) -> list[Any]:
    """Parse a Handlebars template into nodes (Text / Mustache / Block)."""
    root: list[Any] = []
    # each open block: (name, Block, the list currently appended to, the block an {{else}} continues)
    stack: list[tuple[str, Block, list[Any], Block]] = []
    current = root
    pos = 0
    strip_next = False
    for start, end, inner, strip_before, strip_after in _tags(src):
        text = src[pos:start]
        if strip_next:
            text = text.lstrip()
        if strip_before:
            text = text.rstrip()
        if text:
            current.append(Text(text))
        pos, strip_next = end, strip_after
        tag = inner.strip()
        if tag.startswith("!"):
            continue
        if tag.startswith(">"):
            raise UnsupportedTemplateHelperError(f"response template: partials ({{{{{tag}}}}}) are not supported")
        if tag.startswith("#") or (tag.startswith("^") and tag != "^"):
            body_src, params = _split_block_params(tag[1:].strip())
            call = _parse_call(body_src)
            name = call.name or (call.head.raw if isinstance(call.head, PathExpr) else "")
            block = Block(call, [], [], params, inverted=tag.startswith("^"))
            current.append(block)
            stack.append((name, block, block.body, block))
            current = block.body
            continue
        if tag == "else" or tag == "^" or tag.startswith("else "):
            if not stack:
                raise TemplateError(f"response template: {{{{{tag}}}}} outside a block")
            name, block, _, tail = stack[-1]
            rest = tag[5:].strip() if tag.startswith("else ") else ""
            if rest:  # {{else if x}}: a block nested in the inverse, closed by the same {{/if}}
                body_src, params = _split_block_params(rest)
                chained = Block(_parse_call(body_src), [], [], params, chained=True)
                tail.inverse.append(chained)
                tail, current = chained, chained.body
            else:
                current = tail.inverse
            stack[-1] = (name, block, current, tail)
            continue
        if tag.startswith("/"):
            closing = tag[1:].strip()
            if not stack:
                raise TemplateError(f"response template: {{{{/{closing}}}}} closes no block")
            name, block, _, _ = stack.pop()
            if closing != name:
                raise TemplateError(
                    f"response template: {{{{#{name}}}}} is closed by {{{{/{closing}}}}}; close it with {{{{/{name}}}}}"
                )
            current = stack[-1][2] if stack else root
            continue
        if tag.startswith("&"):
            tag = tag[1:]
        current.append(Mustache(_parse_call(tag)))
    if stack:
        raise TemplateError(f"response template: block {{{{#{stack[-1][0]}}}}} is never closed")
    text = src[pos:]
    if strip_next:
        text = text.lstrip()
    if text:
        current.append(Text(text))
    return root


# --- rendering ---------------------------------------------------------------------------------------


@dataclass
class Scope:
    """One level of the context stack: its value, its @data and its block parameters."""

    value: Any
    parent: Scope | None = None
    data: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)


_SAME = object()


@dataclass
class Options:
    """What a helper receives besides its context: Handlebars.java's ``Options``."""

    renderer: Renderer
    scope: Scope
    params: list[Any]
    hash: dict[str, Any]
    has_context: bool
    block: Block | None = None

    @property
    def is_block(self) -> bool:
        return self.block is not None

    def param(self, i: int, default: Any = None) -> Any:
        return self.params[i] if i < len(self.params) else default

    def fn(self, context: Any = _SAME, data: dict[str, Any] | None = None, values: Sequence[Any] = ()) -> str:
        """Render the block's body (with ``context`` as ``this`` if given, block params from ``values``)."""
        if self.block is None:
            return ""
        return self.renderer.render_in(self.block.body, self.scope, context, data, values, self.block.block_params)

    def inverse(self, context: Any = _SAME) -> str:
        if self.block is None:
            return ""
        return self.renderer.render_in(self.block.inverse, self.scope, context, None, (), ())

    def set_data(self, name: str, value: Any) -> None:
        """A variable later tags can read by name (assign, parseJson 'var', regexExtract ... 'var')."""
        self.renderer.variables[name] = value

    def iterate(self, count: int, what: str) -> None:
        self.renderer.iterate(what, count)


Helper = Callable[[Any, Options], Any]


class Renderer:
    """Renders parsed templates against a root model; helpers come from ``template_helpers.HELPERS``."""

    def __init__(self, root: Mapping[str, Any], helpers: Mapping[str, Helper]) -> None:
        self.root = dict(root)
        self.helpers = helpers
        self.variables: dict[str, Any] = {}
        self.output_chars = 0  # text emitted so far (leaves only: a block's text is counted once)
        self.iterations = 0

    def emit(self, text: str) -> str:
        self.output_chars += len(text)
        if self.output_chars > MAX_OUTPUT_CHARS:
            raise _over_limit("the rendered output", self.output_chars, MAX_OUTPUT_CHARS, "characters")
        return text

    def iterate(self, what: str, count: int) -> None:
        self.iterations += count
        if self.iterations > MAX_ITERATIONS:
            raise _over_limit(what, self.iterations, MAX_ITERATIONS, "loop iterations")

    def render(self, nodes: Sequence[Any], scope: Scope) -> str:
        out: list[str] = []
        for node in nodes:
            if isinstance(node, Text):
                out.append(self.emit(node.text))
            elif isinstance(node, Mustache):
                out.append(self.emit(to_text(self.evaluate(node.call, scope, top=True))))
            else:
                out.append(self.block(node, scope))
        return "".join(out)

    def render_in(
        self,
        nodes: Sequence[Any],
        scope: Scope,
        context: Any,
        data: dict[str, Any] | None,
        values: Sequence[Any],
        names: Sequence[str],
    ) -> str:
        if context is _SAME and not data and not names:
            return self.render(nodes, scope)
        inner = Scope(scope.value if context is _SAME else context, scope, dict(data or {}))
        for name, value in zip(names, values):
            inner.params[name] = value
        return self.render(nodes, inner)

    # values

    def resolve(self, item: Any, scope: Scope) -> Any:
        if isinstance(item, Literal):
            return item.value
        if isinstance(item, Call):
            return self.evaluate(item, scope, top=False)
        assert isinstance(item, PathExpr)
        if item.data:
            s: Scope | None = scope
            name = item.parts[0] if item.parts else ""
            if name == "root":
                return walk(self.root, item.parts[1:])
            while s is not None:
                if name in s.data:
                    return walk(s.data[name], item.parts[1:])
                s = s.parent
            return None
        target: Scope = scope
        for _ in range(item.up):
            target = target.parent or target
        if item.this:
            return walk(target.value, item.parts)
        first, rest = item.parts[0], item.parts[1:]
        s = target
        while s is not None:
            if first in s.params:
                return walk(s.params[first], rest)
            s = s.parent
        s = target
        while s is not None:  # Handlebars.java looks a name up in the enclosing contexts too
            found = lookup(s.value, first)
            if found is not None:
                return walk(found, rest)
            s = s.parent
        if first in self.variables:
            return walk(self.variables[first], rest)
        return None

    def evaluate(self, call: Call, scope: Scope, *, top: bool) -> Any:
        name = call.name
        if name is not None and name in self.helpers:
            return self.call_helper(name, call, scope, None)
        if call.params or call.hash:
            raise UnsupportedTemplateHelperError(
                f"response template uses the Handlebars helper {name or call.head!r}, which WireMock (and "
                "testbed) do not have; see WireMock's response templating docs for the helpers there are"
            )
        return self.resolve(call.head, scope)

    def call_helper(self, name: str, call: Call, scope: Scope, block: Block | None) -> Any:
        values = [self.resolve(p, scope) for p in call.params]
        hash_args = {k: self.resolve(v, scope) for k, v in call.hash.items()}
        has_context = bool(values)
        context = values[0] if values else scope.value
        options = Options(self, scope, values[1:], hash_args, has_context, block)
        try:
            return self.helpers[name](context, options)
        except StubError:
            raise
        except RecursionError as exc:
            raise TemplateError(f"response template: helper {name!r} nested too deeply") from exc
        except Exception as exc:  # bad arguments from a template: the user's input, reported as such
            raise TemplateError(f"response template: helper {name!r} failed: {type(exc).__name__}: {exc}") from exc

    def block(self, node: Block, scope: Scope) -> str:
        name = node.call.name
        if not node.inverted and name is not None and name in self.helpers:
            return to_text(self.call_helper(name, node.call, scope, node))
        value = self.evaluate(node.call, scope, top=False)
        if node.inverted:
            return self.render(node.body, scope) if is_empty(value) else self.render(node.inverse, scope)
        # A plain section: {{#path}}...{{/path}}
        if is_empty(value):
            return self.render(node.inverse, scope)
        if isinstance(value, list):
            self.iterate(f"{{{{#{node.call.head.raw if isinstance(node.call.head, PathExpr) else ''}}}}}", len(value))
            return "".join(
                self.render_in(node.body, scope, item, {"index": i}, (item, i), node.block_params)
                for i, item in enumerate(value)
            )
        if value is True:
            return self.render(node.body, scope)
        return self.render_in(node.body, scope, value, None, (value,), node.block_params)


def lookup(obj: Any, key: str) -> Any:
    """One step of a path: a map key, a list index (``0``, ``first``, ``last``), a path segment..."""
    if obj is None:
        return None
    if isinstance(obj, UrlPath):
        if key.isdigit():
            i = int(key)
            return obj.segments[i] if i < len(obj.segments) else None
        return obj.params.get(key)
    if isinstance(obj, CaseInsensitiveMap):
        return obj.lookup(key)
    if isinstance(obj, dict):
        return obj.get(key)
    if isinstance(obj, list | tuple):
        if key.lstrip("-").isdigit():
            i = int(key)
            return obj[i] if 0 <= i < len(obj) else None
        if key == "first":
            return obj[0] if obj else None
        if key == "last":
            return obj[-1] if obj else None
        if key in ("size", "length"):
            return len(obj)
        return None
    if isinstance(obj, str):
        if key in ("length", "bytes", "empty"):
            return {"length": len(obj), "bytes": list(obj.encode()), "empty": obj == ""}[key]
        return None
    attr = getattr(obj, "template_property", None)
    if attr is not None:
        return attr(key)
    return None


def walk(value: Any, parts: Sequence[str]) -> Any:
    for p in parts:
        value = lookup(value, p)
        if value is None:
            return None
    return value


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
    from testbed.stubs.template_helpers import HELPERS

    nodes = parse_template(template)
    model = request_model(request, path_params)
    root = {"request": model, "originalRequest": model, "parameters": dict(parameters or {})}
    renderer = Renderer(root, HELPERS)
    try:
        return renderer.render(nodes, Scope(root))
    except RecursionError as exc:
        raise TemplateError("response template: nested too deeply") from exc
