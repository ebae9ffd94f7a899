"""JSONPath as WireMock evaluates it: Jayway's dialect, written for testbed.

No Python JSONPath library follows Jayway where WireMock users rely on it: a filter on an object applies to
the object itself (``$[?(@.amount > 100)]`` matches ``{"amount": 150}``), ``in`` / ``nin`` / ``size`` /
``empty`` / ``anyof`` / ``noneof`` / ``subsetof`` / ``=~ /re/i`` filters, ``'5' == 5`` in a filter,
functions (``length()``, ``min()``, ``keys()``...), and "definite" paths (a definite path reads one value
and fails when it is missing; an indefinite one reads a list). This module follows Jayway's evaluation
rules token by token.

``compile_jsonpath(text)`` parses (InvalidStubError on bad syntax); ``JsonPath.read(doc)`` answers what
Jayway's ``read`` does: the value, or a list for an indefinite path; PathNotFound when a definite path has
no value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from testbed.stubs.errors import InvalidStubError


class JsonPathError(Exception):
    """Evaluation failed (Jayway's JsonPathException): no match, or the helper's default."""


class PathNotFound(JsonPathError):
    """A definite path has no value in the document."""


class _InvalidPath(JsonPathError):
    """A filter met a value it cannot apply to (Jayway's InvalidPathException): the filter is false."""


_UNDEFINED = object()


@dataclass
class _Context:
    root: Any
    leaf_to_null: bool = False
    require_properties: bool = False
    results: list[Any] = field(default_factory=list)
    refs: list[Any] = field(default_factory=list)  # where each result sits: (container, key) or None

    def add(self, value: Any, ref: Any = None) -> None:
        self.results.append(value)
        self.refs.append(ref)


# --- tokens ------------------------------------------------------------------------------------------


class _Token:
    definite = True

    def evaluate(self, path: JsonPath, i: int, model: Any, ctx: _Context) -> None:
        raise NotImplementedError


class _Root(_Token):
    def evaluate(self, path: JsonPath, i: int, model: Any, ctx: _Context) -> None:
        path.next(i, model, ctx)


@dataclass
class _Property(_Token):
    names: list[str]

    def token_definite(self, leaf: bool) -> bool:
        return len(self.names) == 1 or leaf

    def evaluate(self, path: JsonPath, i: int, model: Any, ctx: _Context) -> None:
        if not isinstance(model, dict):
            if not path.upstream_definite(i):
                return
            raise PathNotFound(f"expected an object with property {self.names} but found {_kind(model)}")
        leaf = path.is_leaf(i)
        if len(self.names) == 1 or leaf:
            path.object_property(i, model, ctx, self.names)
            return
        for name in self.names:
            path.object_property(i, model, ctx, [name])


@dataclass
class _Index(_Token):
    indexes: list[int]

    def evaluate(self, path: JsonPath, i: int, model: Any, ctx: _Context) -> None:
        if not path.check_array(i, model):
            return
        for index in self.indexes:
            path.array_index(i, index, model, ctx)


@dataclass
class _Slice(_Token):
    start: int | None
    end: int | None
    definite = False

    def evaluate(self, path: JsonPath, i: int, model: Any, ctx: _Context) -> None:
        if not path.check_array(i, model):
            return
        length = len(model)
        if length == 0:
            return
        if self.end is None:  # [from:]
            start = self.start or 0
            start = max(0, length + start if start < 0 else start)
            indexes: Sequence[int] = range(start, length)
        elif self.start is None:  # [:to]
            end = length + self.end if self.end < 0 else self.end
            indexes = range(0, min(length, end))
        else:  # [from:to]
            indexes = range(self.start, min(length, self.end))
        for index in indexes:
            path.array_index(i, index, model, ctx)


class _Wildcard(_Token):
    definite = False

    def evaluate(self, path: JsonPath, i: int, model: Any, ctx: _Context) -> None:
        if isinstance(model, dict):
            for name in list(model):
                path.object_property(i, model, ctx, [name])
        elif isinstance(model, list):
            for index in range(len(model)):
                try:
                    path.array_index(i, index, model, ctx)
                except PathNotFound:
                    if ctx.require_properties:
                        raise


class _Scan(_Token):
    definite = False

    def evaluate(self, path: JsonPath, i: int, model: Any, ctx: _Context) -> None:
        target = path.tokens[i + 1]

        def matches(node: Any) -> bool:
            if isinstance(target, _Property):
                if not isinstance(node, dict):
                    return False
                if not target.token_definite(path.is_leaf(i + 1)):
                    return True
                if path.is_leaf(i + 1) and ctx.leaf_to_null:
                    return True
                return all(n in node for n in target.names)
            if isinstance(target, _Index | _Slice):
                return isinstance(node, list)
            if isinstance(target, _Wildcard):
                return True
            if isinstance(target, _Filter):
                return target.accept(node, ctx)
            return False

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                if matches(node):
                    target.evaluate(path, i + 1, node, ctx)
                for value in list(node.values()):
                    walk(value)
            elif isinstance(node, list):
                if matches(node):
                    target.evaluate(path, i + 1, node, ctx)
                for value in node:
                    walk(value)

        walk(model)


@dataclass
class _Filter(_Token):
    predicate: _Predicate
    definite = False

    def accept(self, item: Any, ctx: _Context) -> bool:
        try:
            return self.predicate.test(item, ctx)
        except _InvalidPath:
            return False

    def evaluate(self, path: JsonPath, i: int, model: Any, ctx: _Context) -> None:
        if isinstance(model, dict):  # Jayway applies a filter on an object to the object itself
            if self.accept(model, ctx):
                if path.is_leaf(i):
                    ctx.add(model)
                else:
                    path.next(i, model, ctx)
        elif isinstance(model, list):
            for index, item in enumerate(model):
                if self.accept(item, ctx):
                    path.array_index(i, index, model, ctx)
        elif path.upstream_definite(i):
            raise _InvalidPath(f"a filter cannot be applied to {_kind(model)}")


@dataclass
class _Function(_Token):
    name: str
    params: list[Any]

    def evaluate(self, path: JsonPath, i: int, model: Any, ctx: _Context) -> None:
        result = _FUNCTIONS[self.name](model, [_param_value(p, model, ctx) for p in self.params])
        if path.is_leaf(i):
            ctx.add(result)
        else:
            path.next(i, result, ctx)


def _param_value(param: Any, model: Any, ctx: _Context) -> Any:
    if isinstance(param, JsonPath):
        return param.read(model if param.relative else ctx.root, ctx.root, leaf_to_null=ctx.leaf_to_null)
    return param


def _numbers(model: Any, params: list[Any]) -> list[float]:
    values: list[Any] = []
    if isinstance(model, list):
        values += [v for v in model if _is_number(v)]
    for p in params:
        values += [v for v in p if _is_number(v)] if isinstance(p, list) else ([p] if _is_number(p) else [])
    if not values:
        raise JsonPathError("Aggregation function attempted to calculate value using empty array")
    return [float(v) for v in values]


def _stddev(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum(v * v for v in values) / len(values) - mean * mean)


def _length(model: Any, params: list[Any]) -> Any:
    return len(model) if isinstance(model, list | dict) else None


def _sequence(pick: Callable[[list[Any], list[Any]], Any]) -> Callable[[Any, list[Any]], Any]:
    def fn(model: Any, params: list[Any]) -> Any:
        if not isinstance(model, list):
            raise JsonPathError("Aggregation function attempted to calculate value using empty array")
        return pick(model, params)

    return fn


def _index(model: list[Any], params: list[Any]) -> Any:
    n = int(params[0]) if params else 0
    real = n if n >= 0 else len(model) + n
    if not 0 <= real < len(model):
        raise JsonPathError(f"Target index:{n} larger than object count:{len(model)}")
    return model[real]


_FUNCTIONS: dict[str, Callable[[Any, list[Any]], Any]] = {
    "length": _length,
    "size": _length,
    "min": lambda m, p: min(_numbers(m, p)),
    "max": lambda m, p: max(_numbers(m, p)),
    "sum": lambda m, p: sum(_numbers(m, p)),
    "avg": lambda m, p: sum(v := _numbers(m, p)) / len(v),
    "stddev": lambda m, p: _stddev(_numbers(m, p)),
    "keys": lambda m, p: list(m) if isinstance(m, dict) else None,
    "first": _sequence(lambda m, p: _index(m, [0])),
    "last": _sequence(lambda m, p: _index(m, [-1])),
    "index": _sequence(_index),
    "concat": lambda m, p: "".join(
        _concat_text(v) for v in ([*m] if isinstance(m, list) else []) + [x for x in p if x is not None]
    ),
    "append": lambda m, p: [*m, *p] if isinstance(m, list) else m,
}


def _concat_text(v: Any) -> str:
    from testbed.stubs.java_text import value_text

    return value_text(v) if not isinstance(v, dict | list) else ""


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _kind(model: Any) -> str:
    if model is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(type(model), "a number")


# --- the compiled path -------------------------------------------------------------------------------


@dataclass
class JsonPath:
    """A compiled JSONPath; ``read`` is Jayway's ``JsonPath.read``."""

    text: str
    tokens: list[_Token]
    relative: bool = False  # starts with @ (inside a filter)

    def __post_init__(self) -> None:
        n = len(self.tokens)
        self._definite = [self._token_definite(i) for i in range(n)]
        # $..a.fn() is evaluated as $.fn($..a): one value, so a definite path
        self.scan_function = isinstance(self.tokens[-1], _Function) and any(isinstance(t, _Scan) for t in self.tokens)
        self.definite = all(self._definite) or self.scan_function

    def _token_definite(self, i: int) -> bool:
        t = self.tokens[i]
        if isinstance(t, _Property):
            return t.token_definite(self.is_leaf(i))
        if isinstance(t, _Index):
            return len(t.indexes) == 1
        return t.definite

    def is_leaf(self, i: int) -> bool:
        return i == len(self.tokens) - 1

    def upstream_definite(self, i: int) -> bool:
        return all(self._definite[:i])

    def next(self, i: int, model: Any, ctx: _Context) -> None:
        if self.is_leaf(i):
            ctx.add(model)
        else:
            self.tokens[i + 1].evaluate(self, i + 1, model, ctx)

    def check_array(self, i: int, model: Any) -> bool:
        if isinstance(model, list):
            return True
        if not self.upstream_definite(i):
            return False
        if model is None:
            raise PathNotFound("the path is null")
        raise PathNotFound(f"an index or slice can only be applied to arrays, not to {_kind(model)}")

    def object_property(self, i: int, model: dict[str, Any], ctx: _Context, names: list[str]) -> None:
        leaf = self.is_leaf(i)
        if len(names) == 1:
            name = names[0]
            value = model.get(name, _UNDEFINED)
            if value is _UNDEFINED:
                if leaf:
                    if ctx.leaf_to_null:
                        value = None
                    elif ctx.require_properties:
                        raise PathNotFound(f"no results for path: ['{name}']")
                    else:
                        return
                elif not (self.upstream_definite(i) and self._definite[i]) and not ctx.require_properties:
                    return
                else:
                    raise PathNotFound(f"missing property ['{name}']")
            if leaf:
                ctx.add(value, (model, name))
            else:
                self.tokens[i + 1].evaluate(self, i + 1, value, ctx)
            return
        merged: dict[str, Any] = {}
        for name in names:
            if name in model:
                merged[name] = model[name]
            elif ctx.leaf_to_null:
                merged[name] = None
            elif ctx.require_properties:
                raise PathNotFound(f"missing property ['{name}']")
        ctx.add(merged, (model, tuple(names)))

    def array_index(self, i: int, index: int, model: list[Any], ctx: _Context) -> None:
        real = len(model) + index if index < 0 else index
        if not 0 <= real < len(model):
            return
        if self.is_leaf(i):
            ctx.add(model[real], (model, real))
        else:
            self.tokens[i + 1].evaluate(self, i + 1, model[real], ctx)

    def evaluate(
        self, doc: Any, root: Any = None, *, leaf_to_null: bool = False, require_properties: bool = False
    ) -> list[Any]:
        """Every value the path reaches (Jayway's result list, before definite paths are unwrapped)."""
        last = self.tokens[-1]
        if self.scan_function:
            assert isinstance(last, _Function)
            # Jayway turns $..a.fn() into $.fn($..a): the function gets every value the scan found (for
            # length(), each one's elements: $..book.length() counts the books)
            prefix = self.tokens[:-1] + ([_Wildcard()] if last.name in ("length", "size") else [])
            found = JsonPath(self.text, prefix).evaluate(doc, root, leaf_to_null=leaf_to_null)
            return [_FUNCTIONS[last.name](found, [_param_value(p, doc, _Context(doc)) for p in last.params])]
        ctx = _Context(doc if root is None else root, leaf_to_null, require_properties)
        self.tokens[0].evaluate(self, 0, doc, ctx)
        return ctx.results

    def locate(self, doc: Any, *, leaf_to_null: bool = False) -> list[Any]:
        """Where the path's values sit: (container, key) each, None for the root or a computed value."""
        ctx = _Context(doc, leaf_to_null)
        self.tokens[0].evaluate(self, 0, doc, ctx)
        if self.definite and not ctx.results:
            raise PathNotFound(f"no results for path: {self.text}")
        return ctx.refs

    def read(self, doc: Any, root: Any = None, *, leaf_to_null: bool = False, require_properties: bool = False) -> Any:
        """Jayway's ``read``: a definite path gives its value (PathNotFound if none), an indefinite one a list."""
        try:
            results = self.evaluate(doc, root, leaf_to_null=leaf_to_null, require_properties=require_properties)
        except RecursionError as exc:
            raise JsonPathError("the document is nested too deeply") from exc
        if self.definite:
            if not results:
                raise PathNotFound(f"no results for path: {self.text}")
            return results[-1]
        return results


# --- filters -----------------------------------------------------------------------------------------


class _Predicate:
    def test(self, item: Any, ctx: _Context) -> bool:
        raise NotImplementedError


@dataclass
class _Not(_Predicate):
    inner: _Predicate

    def test(self, item: Any, ctx: _Context) -> bool:
        return not self.inner.test(item, ctx)


@dataclass
class _And(_Predicate):
    parts: list[_Predicate]

    def test(self, item: Any, ctx: _Context) -> bool:
        return all(p.test(item, ctx) for p in self.parts)


@dataclass
class _Or(_Predicate):
    parts: list[_Predicate]

    def test(self, item: Any, ctx: _Context) -> bool:
        return any(p.test(item, ctx) for p in self.parts)


@dataclass(frozen=True)
class _Value:
    """Jayway's ValueNode: kind is num, str, bool, null, json (object/array), pattern, undefined."""

    kind: str
    value: Any = None


_NULL = _Value("null")
_UNDEF = _Value("undefined")


def _node(value: Any) -> _Value:
    if value is None:
        return _NULL
    if isinstance(value, bool):
        return _Value("bool", value)
    if isinstance(value, int | float):
        return _Value("num", _decimal(value))
    if isinstance(value, str):
        return _Value("str", value)
    return _Value("json", value)


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


@dataclass
class _PathOperand:
    path: JsonPath

    def node(self, item: Any, ctx: _Context) -> _Value:
        doc = item if self.path.relative else ctx.root
        try:
            value = self.path.read(doc, ctx.root, leaf_to_null=ctx.leaf_to_null)
        except PathNotFound:
            return _UNDEF
        return _node(value)

    def exists(self, item: Any, ctx: _Context) -> bool:
        doc = item if self.path.relative else ctx.root
        try:
            self.path.read(doc, ctx.root, require_properties=True)
        except PathNotFound:
            return False
        return True


@dataclass
class _Exists(_Predicate):
    operand: _PathOperand
    should: bool = True

    def test(self, item: Any, ctx: _Context) -> bool:
        return self.operand.exists(item, ctx) == self.should


@dataclass
class _Relation(_Predicate):
    left: Any  # _PathOperand or _Value
    op: str
    right: Any

    def test(self, item: Any, ctx: _Context) -> bool:
        left = self.left.node(item, ctx) if isinstance(self.left, _PathOperand) else self.left
        right = self.right.node(item, ctx) if isinstance(self.right, _PathOperand) else self.right
        return _RELATIONS[self.op](left, right)


def _equals(a: _Value, b: _Value) -> bool:
    """Jayway's ``left.equals(right)``: strings and numbers compare across kinds, undefined never equals."""
    if a.kind == "json" and b.kind == "json":
        return _json_equal(a.value, b.value)
    if a.kind == "str":
        if b.kind == "str":
            return bool(a.value == b.value)
        if b.kind == "num":
            return bool(b.value is not None and a.value == _decimal_text(b.value))
        return False
    if a.kind == "num":
        if b.kind in ("num", "str"):
            other = b.value if b.kind == "num" else _decimal(b.value)
            return a.value is not None and other is not None and a.value == other
        return False
    if a.kind in ("bool", "null", "pattern"):
        return a.kind == b.kind and a.value == b.value
    return False


def _decimal_text(d: Decimal) -> str:
    return str(d)


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b))
    return bool(type(a) is type(b) and a == b) or (_is_number(a) and _is_number(b) and a == b)


def _order(test: Callable[[int], bool]) -> Callable[[_Value, _Value], bool]:
    def relation(a: _Value, b: _Value) -> bool:
        if a.kind == "num" and b.kind == "num" and a.value is not None and b.value is not None:
            return test((a.value > b.value) - (a.value < b.value))
        if a.kind == "str" and b.kind == "str":
            return test((a.value > b.value) - (a.value < b.value))
        return False

    return relation


def _as_list(v: _Value) -> list[_Value] | None:
    if v.kind == "json" and isinstance(v.value, list):
        return [_node(x) for x in v.value]
    return None


def _in(a: _Value, b: _Value) -> bool:
    items = _as_list(b)
    return items is not None and any(_equals(a, x) for x in items)


def _subset_of(a: _Value, b: _Value) -> bool:
    left, right = _as_list(a), _as_list(b)
    if left is None or right is None:
        return False
    return all(any(_equals(x, y) for y in right) for x in left)


def _any_of(a: _Value, b: _Value) -> bool:
    left, right = _as_list(a), _as_list(b)
    if left is None or right is None:
        return False
    return any(_equals(x, y) for x in left for y in right)


def _none_of(a: _Value, b: _Value) -> bool:
    left, right = _as_list(a), _as_list(b)
    if left is None or right is None:
        return False
    return not any(_equals(x, y) for x in left for y in right)


def _all(a: _Value, b: _Value) -> bool:
    required = _as_list(b) or []
    if a.kind != "json":
        return False
    have = _as_list(a)
    return have is None or all(any(_equals(h, r) for h in have) for r in required)


def _contains(a: _Value, b: _Value) -> bool:
    if a.kind == "str" and b.kind == "str":
        return bool(b.value in a.value)
    if a.kind == "json":
        items = _as_list(a)
        return items is not None and any(_equals(x, b) for x in items)
    return False


def _size(a: _Value, b: _Value) -> bool:
    if b.kind != "num" or b.value is None:
        return False
    expected = int(b.value)
    if a.kind == "str":
        return len(a.value) == expected
    if a.kind == "json":
        return (len(a.value) if isinstance(a.value, list) else -1) == expected
    return False


def _empty(a: _Value, b: _Value) -> bool:
    want = bool(b.value) if b.kind == "bool" else False
    if a.kind == "str":
        return bool((a.value == "") == want)
    if a.kind == "json":
        return (len(a.value) == 0) == want
    return False


def _regex_input(v: _Value) -> str:
    if v.kind == "str":
        return str(v.value)
    if v.kind == "num":
        return _decimal_text(v.value) if v.value is not None else ""
    if v.kind == "bool":
        return "true" if v.value else "false"
    return ""


def _regex(a: _Value, b: _Value) -> bool:
    if (a.kind == "pattern") == (b.kind == "pattern"):
        return False
    pattern, other = (a, b) if a.kind == "pattern" else (b, a)
    regex: re.Pattern[str] = pattern.value
    items = _as_list(other)
    if items is not None:
        return any(regex.fullmatch(_regex_input(x)) for x in items)
    return regex.fullmatch(_regex_input(other)) is not None


def _type_safe_equals(a: _Value, b: _Value) -> bool:
    return a.kind == b.kind and _equals(a, b)


_RELATIONS: dict[str, Callable[[_Value, _Value], bool]] = {
    "==": _equals,
    "!=": lambda a, b: not _equals(a, b),
    "===": _type_safe_equals,
    "!==": lambda a, b: not _type_safe_equals(a, b),
    "<": _order(lambda c: c < 0),
    "<=": _order(lambda c: c <= 0),
    ">": _order(lambda c: c > 0),
    ">=": _order(lambda c: c >= 0),
    "=~": _regex,
    "in": _in,
    "nin": lambda a, b: not _in(a, b),
    "subsetof": _subset_of,
    "anyof": _any_of,
    "noneof": _none_of,
    "all": _all,
    "contains": _contains,
    "size": _size,
    "empty": _empty,
}
_SYMBOL_OPS = ("===", "!==", "==", "!=", "<=", ">=", "=~", "<", ">")
_WORD_OPS = ("subsetof", "contains", "anyof", "noneof", "empty", "size", "nin", "all", "in")


# --- parsing -----------------------------------------------------------------------------------------


class _SyntaxError(Exception):
    pass


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def error(self, what: str) -> _SyntaxError:
        return _SyntaxError(f"{what} at position {self.i}")

    def peek(self, n: int = 1) -> str:
        return self.s[self.i : self.i + n]

    def at_end(self) -> bool:
        return self.i >= len(self.s)

    def skip_ws(self) -> None:
        while not self.at_end() and self.s[self.i] in " \t\r\n":
            self.i += 1

    def expect(self, text: str) -> None:
        self.skip_ws()
        if not self.s.startswith(text, self.i):
            raise self.error(f"expected {text!r}")
        self.i += len(text)

    # paths

    def path(self, in_filter: bool = False) -> JsonPath:
        start = self.i
        c = self.peek()
        if c not in ("$", "@"):
            raise self.error("a path starts with $ or @")
        self.i += 1
        tokens: list[_Token] = [_Root()]
        while not self.at_end():
            c = self.peek()
            if self.s.startswith("..", self.i):
                self.i += 2
                tokens.append(_Scan())
                if self.peek() == "[":
                    continue
                if self.peek() == "*":
                    self.i += 1
                    tokens.append(_Wildcard())
                    continue
                tokens.append(self.dot_name(in_filter))
            elif c == ".":
                self.i += 1
                if self.peek() == "*":
                    self.i += 1
                    tokens.append(_Wildcard())
                    continue
                if self.peek() == "[":  # Jayway reads a.[0] as a[0]
                    continue
                tokens.append(self.dot_name(in_filter))
            elif c == "[":
                tokens.append(self.bracket())
            else:
                break
        if len(tokens) > 1 and isinstance(tokens[-1], _Scan):
            raise self.error("a path cannot end with '..'")
        for t in tokens[:-1]:
            if isinstance(t, _Function):
                raise self.error("a function must be the last part of a path")
        return JsonPath(self.s[start : self.i], tokens, relative=self.s[start] == "@")

    def dot_name(self, in_filter: bool) -> _Token:
        start = self.i
        stop = " \t\r\n.[()" + ("=!<>&|,]" if in_filter else "")
        while not self.at_end() and self.s[self.i] not in stop:
            self.i += 1
        name = self.s[start : self.i]
        if not name:
            raise self.error("a property name is missing")
        if self.peek() == "(":
            if name not in _FUNCTIONS:
                raise self.error(f"unknown function {name}()")
            return _Function(name, self.function_params())
        return _Property([name])

    def function_params(self) -> list[Any]:
        self.expect("(")
        params: list[Any] = []
        self.skip_ws()
        if self.peek() == ")":
            self.i += 1
            return params
        while True:
            self.skip_ws()
            if self.peek() in ("$", "@"):
                params.append(self.path(in_filter=True))
            else:
                params.append(self.literal())
            self.skip_ws()
            if self.peek() == ",":
                self.i += 1
                continue
            self.expect(")")
            return params

    def bracket(self) -> _Token:
        self.i += 1  # [
        self.skip_ws()
        c = self.peek()
        if c == "?":
            self.i += 1
            self.expect("(")
            predicate = self.or_expr()
            self.expect(")")
            self.expect("]")
            return _Filter(predicate)
        if c == "*":
            self.i += 1
            self.expect("]")
            return _Wildcard()
        if c in ("'", '"'):
            names = []
            while True:
                self.skip_ws()
                names.append(self.quoted())
                self.skip_ws()
                if self.peek() == ",":
                    self.i += 1
                    continue
                self.expect("]")
                return _Property(names)
        end = self.s.find("]", self.i)
        if end < 0:
            raise self.error("unclosed [")
        inner = self.s[self.i : end].replace(" ", "")
        self.i = end + 1
        if ":" in inner:
            a, _, b = inner.partition(":")
            if ":" in b:
                b = b.split(":")[0]
            try:
                return _Slice(int(a) if a else None, int(b) if b else None)
            except ValueError as exc:
                raise self.error(f"bad slice [{inner}]") from exc
        try:
            return _Index([int(x) for x in inner.split(",")])
        except ValueError as exc:
            raise self.error(f"bad array index [{inner}]") from exc

    def quoted(self) -> str:
        q = self.peek()
        if q not in ("'", '"'):
            raise self.error("expected a quoted string")
        self.i += 1
        out = []
        while not self.at_end():
            c = self.s[self.i]
            if c == "\\" and self.i + 1 < len(self.s):
                nxt = self.s[self.i + 1]
                out.append({"n": "\n", "t": "\t", "r": "\r"}.get(nxt, nxt))
                self.i += 2
                continue
            if c == q:
                self.i += 1
                return "".join(out)
            out.append(c)
            self.i += 1
        raise self.error("unclosed string")

    # filters

    def or_expr(self) -> _Predicate:
        parts = [self.and_expr()]
        while True:
            self.skip_ws()
            if self.s.startswith("||", self.i):
                self.i += 2
                parts.append(self.and_expr())
            else:
                return parts[0] if len(parts) == 1 else _Or(parts)

    def and_expr(self) -> _Predicate:
        parts = [self.unary()]
        while True:
            self.skip_ws()
            if self.s.startswith("&&", self.i):
                self.i += 2
                parts.append(self.unary())
            else:
                return parts[0] if len(parts) == 1 else _And(parts)

    def unary(self) -> _Predicate:
        self.skip_ws()
        if self.peek() == "!" and self.peek(2) != "!=":
            self.i += 1
            self.skip_ws()
            if self.peek() in ("@", "$"):
                operand = self.operand()
                if isinstance(operand, _PathOperand):
                    return _Exists(operand, should=False)
            return _Not(self.unary())
        if self.peek() == "(":
            self.i += 1
            inner = self.or_expr()
            self.expect(")")
            return inner
        left = self.operand()
        self.skip_ws()
        op = self.operator()
        if op is None:
            if isinstance(left, _PathOperand):
                return _Exists(left)
            raise self.error("a filter needs a comparison or a path to test for existence")
        self.skip_ws()
        right = self.operand()
        return _Relation(left, op, right)

    def operator(self) -> str | None:
        for op in _SYMBOL_OPS:
            if self.s.startswith(op, self.i):
                self.i += len(op)
                return op
        for op in _WORD_OPS:
            end = self.i + len(op)
            if self.s.startswith(op, self.i) and (end >= len(self.s) or not self.s[end].isalnum()):
                self.i = end
                return op
        return None

    def operand(self) -> Any:
        self.skip_ws()
        c = self.peek()
        if c in ("@", "$"):
            return _PathOperand(self.path(in_filter=True))
        if c == "/":
            return self.regex()
        return _node(self.literal())

    def regex(self) -> _Value:
        self.i += 1
        start = self.i
        while not self.at_end() and self.s[self.i] != "/":
            self.i += 2 if self.s[self.i] == "\\" else 1
        if self.at_end():
            raise self.error("unclosed regular expression")
        source = self.s[start : self.i]
        self.i += 1
        flags = 0
        while not self.at_end() and self.s[self.i].isalpha():
            f = self.s[self.i]
            flags |= {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE, "u": 0}.get(f, 0)
            self.i += 1
        try:
            return _Value("pattern", re.compile(source, flags))
        except re.error as exc:
            raise self.error(f"bad regular expression /{source}/: {exc}") from exc

    def literal(self) -> Any:
        self.skip_ws()
        c = self.peek()
        if c in ("'", '"'):
            return self.quoted()
        if c in ("[", "{"):
            return self.json_literal()
        m = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?").match(self.s, self.i)
        if m:
            self.i = m.end()
            text = m.group()
            return float(text) if any(ch in text for ch in ".eE") else int(text)
        for word, value in (("true", True), ("false", False), ("null", None)):
            if self.s.startswith(word, self.i):
                self.i += len(word)
                return value
        raise self.error("expected a value (a path, a string, a number, true, false, null, [...], {...} or /regex/)")

    def json_literal(self) -> Any:
        open_c = self.peek()
        close_c = "]" if open_c == "[" else "}"
        self.i += 1
        if open_c == "[":
            items: list[Any] = []
            self.skip_ws()
            if self.peek() == "]":
                self.i += 1
                return items
            while True:
                items.append(self.literal())
                self.skip_ws()
                if self.peek() == ",":
                    self.i += 1
                    continue
                self.expect(close_c)
                return items
        obj: dict[str, Any] = {}
        self.skip_ws()
        if self.peek() == "}":
            self.i += 1
            return obj
        while True:
            self.skip_ws()
            key = self.quoted()
            self.expect(":")
            obj[key] = self.literal()
            self.skip_ws()
            if self.peek() == ",":
                self.i += 1
                continue
            self.expect("}")
            return obj


@lru_cache(maxsize=1024)  # templates and stubs evaluate the same expressions for every request
def compile_jsonpath(expression: str) -> JsonPath:
    """Parse a JSONPath (Jayway's dialect); InvalidStubError names what is wrong with it."""
    text = expression.strip()
    if not text:
        raise InvalidStubError("a JSONPath expression cannot be empty")
    if text[0] not in "$@":
        text = "$." + text if not text.startswith("[") else "$" + text  # Jayway reads 'a.b' as '$.a.b'
    parser = _Parser(text)
    try:
        path = parser.path()
        parser.skip_ws()
        if not parser.at_end():
            raise parser.error(f"unexpected {parser.s[parser.i : parser.i + 10]!r}")
    except _SyntaxError as exc:
        raise InvalidStubError(f"invalid JSONPath expression {expression!r}: {exc}") from exc
    return path


def read_json(document: Any, expression: str, **options: bool) -> Any:
    """Evaluate ``expression`` on a parsed document (Jayway's ``JsonPath.read``)."""
    return compile_jsonpath(expression).read(document, **options)


__all__ = ["JsonPath", "JsonPathError", "PathNotFound", "compile_jsonpath", "read_json"]
