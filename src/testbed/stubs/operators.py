"""WireMock's value matchers ("string value patterns"): parsing from JSON, matching, match distance.

The JSON, XML and date operators live in their own modules, imported when a mapping first uses one
(the standalone server's start time is mostly imports).

Each pattern answers two questions: ``matches(value)`` on the hot path (cheap, boolean) and
``distance(value)`` (0.0 = exact, 1.0 = nothing alike) for near-miss reports only. ``value`` is ``None``
when the header, query parameter, cookie... is absent.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from testbed.stubs.errors import InvalidStubError

JsonObj = dict[str, Any]


class ValuePattern:
    """A WireMock string value pattern (``{"equalTo": "x"}``, ``{"matchesJsonPath": "$.a"}``...)."""

    operator: str = ""

    def matches(self, value: str | None) -> bool:
        raise NotImplementedError

    def distance(self, value: str | None) -> float:
        return 0.0 if self.matches(value) else 1.0

    def to_json(self) -> JsonObj:
        raise NotImplementedError

    @property
    def expected(self) -> str:
        """The expected value as shown in a near-miss table."""
        v = self.to_json().get(self.operator)
        return v if isinstance(v, str) else json.dumps(v, indent=2)

    def describe(self) -> str:
        return f"[{self.operator}] {self.expected}" if self.operator != "equalTo" else self.expected


def levenshtein(a: str, b: str) -> int:
    """The edit distance of two strings (Hyyro's bit-parallel algorithm: one pass over ``b``).

    Near-miss reports compute it for every stub on every unmatched request, so it must be cheap; Python's
    integers serve as bit vectors of any length.
    """
    if len(a) > len(b):
        a, b = b, a
    m = len(a)
    if m == 0:
        return len(b)
    peq: dict[str, int] = {}
    for i, c in enumerate(a):
        peq[c] = peq.get(c, 0) | (1 << i)
    full = (1 << m) - 1
    top = 1 << (m - 1)
    pv, mv, score = full, 0, m
    for c in b:
        eq = peq.get(c, 0)
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        ph = (mv | ~(xh | pv)) & full
        mh = pv & xh
        if ph & top:
            score += 1
        elif mh & top:
            score -= 1
        ph = ((ph << 1) | 1) & full
        mh = (mh << 1) & full
        pv = (mh | ~(xv | ph)) & full
        mv = ph & xv
    return score


def levenshtein_ratio(a: str, b: str) -> float:
    """Normalised edit distance in [0, 1]: WireMock's distance for equalTo."""
    if a == b:
        return 0.0
    if not a or not b:
        return 1.0
    if len(a) * len(b) > 40_000_000:  # very long bodies: a precise figure is not worth the CPU
        return 1.0
    return levenshtein(a, b) / max(len(a), len(b))


# --- plain string operators -------------------------------------------------------------------------


@dataclass(frozen=True)
class EqualTo(ValuePattern):
    value: str
    case_insensitive: bool = False
    operator = "equalTo"

    @cached_property
    def _folded(self) -> str:
        return self.value.casefold()

    def matches(self, value: str | None) -> bool:
        if value is None:
            return False
        if self.case_insensitive:
            return value.casefold() == self._folded
        return value == self.value

    def distance(self, value: str | None) -> float:
        if value is None:
            return 1.0
        if self.case_insensitive:
            return levenshtein_ratio(self._folded, value.casefold())
        return levenshtein_ratio(self.value, value)

    def to_json(self) -> JsonObj:
        out: JsonObj = {"equalTo": self.value}
        if self.case_insensitive:
            out["caseInsensitive"] = True
        return out


@dataclass(frozen=True)
class Contains(ValuePattern):
    value: str
    operator = "contains"

    def matches(self, value: str | None) -> bool:
        return value is not None and self.value in value

    def to_json(self) -> JsonObj:
        return {"contains": self.value}


@dataclass(frozen=True)
class DoesNotContain(ValuePattern):
    value: str
    operator = "doesNotContain"

    def matches(self, value: str | None) -> bool:
        return value is None or self.value not in value  # absent contains nothing (as WireMock)

    def to_json(self) -> JsonObj:
        return {"doesNotContain": self.value}


@dataclass(frozen=True)
class Matches(ValuePattern):
    value: str
    negate: bool = False

    @property
    def operator(self) -> str:  # type: ignore[override]
        return "doesNotMatch" if self.negate else "matches"

    @cached_property
    def _regex(self) -> re.Pattern[str]:
        return re.compile(_java_regex(self.value), re.DOTALL)  # WireMock compiles with DOTALL

    def matches(self, value: str | None) -> bool:
        if value is None:
            return self.negate
        return (self._regex.fullmatch(value) is None) == self.negate

    def to_json(self) -> JsonObj:
        return {self.operator: self.value}


def _java_regex(regex: str) -> str:
    """Java regex syntax that Python's ``re`` spells differently (named groups)."""
    return re.sub(r"\(\?<(?![=!])", "(?P<", regex)


@dataclass(frozen=True)
class Absent(ValuePattern):
    operator = "absent"

    def matches(self, value: str | None) -> bool:
        return value is None

    def to_json(self) -> JsonObj:
        return {"absent": True}

    @property
    def expected(self) -> str:
        return "(absent)"


@dataclass(frozen=True)
class Anything(ValuePattern):
    operator = "anything"

    def matches(self, value: str | None) -> bool:
        return True

    def to_json(self) -> JsonObj:
        return {"anything": "anything"}


@dataclass(frozen=True)
class Not(ValuePattern):
    inner: ValuePattern
    operator = "not"

    def matches(self, value: str | None) -> bool:
        return not self.inner.matches(value)

    def to_json(self) -> JsonObj:
        return {"not": self.inner.to_json()}


@dataclass(frozen=True)
class LogicalAnd(ValuePattern):
    parts: tuple[ValuePattern, ...]
    operator = "and"

    def matches(self, value: str | None) -> bool:
        return all(p.matches(value) for p in self.parts)

    def distance(self, value: str | None) -> float:
        return sum(p.distance(value) for p in self.parts) / len(self.parts)

    def to_json(self) -> JsonObj:
        return {"and": [p.to_json() for p in self.parts]}


@dataclass(frozen=True)
class LogicalOr(ValuePattern):
    parts: tuple[ValuePattern, ...]
    operator = "or"

    def matches(self, value: str | None) -> bool:
        return any(p.matches(value) for p in self.parts)

    def distance(self, value: str | None) -> float:
        return min(p.distance(value) for p in self.parts)

    def to_json(self) -> JsonObj:
        return {"or": [p.to_json() for p in self.parts]}


@dataclass(frozen=True)
class BinaryEqualTo(ValuePattern):
    """Body only: the raw bytes equal the base64-decoded value."""

    value: str
    operator = "binaryEqualTo"

    @cached_property
    def raw(self) -> bytes:
        return base64.b64decode(self.value)

    def matches(self, value: str | None) -> bool:
        return value is not None and value.encode("utf-8", "surrogateescape") == self.raw

    def matches_bytes(self, body: bytes) -> bool:
        return body == self.raw

    def to_json(self) -> JsonObj:
        return {"binaryEqualTo": self.value}


# --- multi-value (query parameters, headers, form parameters) ----------------------------------------


@dataclass(frozen=True)
class MultiValuePattern:
    """Single pattern: any value matches; ``hasExactly`` / ``includes``: a list of patterns."""

    single: ValuePattern | None = None
    exactly: tuple[ValuePattern, ...] | None = None
    includes: tuple[ValuePattern, ...] | None = None

    def matches(self, values: Sequence[str]) -> bool:
        if self.single is not None:
            if not values:
                return self.single.matches(None)
            return any(self.single.matches(v) for v in values)
        if self.exactly is not None:
            if len(values) != len(self.exactly):
                return False
            return all(any(p.matches(v) for v in values) for p in self.exactly) and all(
                any(p.matches(v) for p in self.exactly) for v in values
            )
        assert self.includes is not None
        return all(any(p.matches(v) for v in values) for p in self.includes)

    def distance(self, values: Sequence[str]) -> float:
        if self.single is not None:
            if not values:
                return self.single.distance(None)
            return min(self.single.distance(v) for v in values)
        return 0.0 if self.matches(values) else 1.0

    def to_json(self) -> JsonObj:
        if self.single is not None:
            return self.single.to_json()
        if self.exactly is not None:
            return {"hasExactly": [p.to_json() for p in self.exactly]}
        assert self.includes is not None
        return {"includes": [p.to_json() for p in self.includes]}

    def describe(self) -> str:
        if self.single is not None:
            return self.single.describe()
        kind, parts = (
            ("hasExactly", self.exactly) if self.exactly is not None else ("includes", self.includes)
        )
        return f"[{kind}] " + ", ".join(p.describe() for p in parts or ())


# --- parsing -----------------------------------------------------------------------------------------

_OPERATORS = (
    "equalTo",
    "binaryEqualTo",
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
    "matchesJsonPath",
    "matchesJsonSchema",
    "equalToXml",
    "matchesXPath",
    "before",
    "after",
    "equalToDateTime",
)


def bool_option(obj: Mapping[str, Any], key: str, pointer: str) -> bool:
    v = obj.get(key, False)
    if v is None:
        return False
    if not isinstance(v, bool):
        raise InvalidStubError(f"{key} must be true or false, got {json.dumps(v)}", f"{pointer}/{key}")
    return v


def str_option(obj: Mapping[str, Any], key: str, pointer: str) -> str:
    v = obj[key]
    if isinstance(v, bool) or v is None or isinstance(v, dict | list):
        raise InvalidStubError(f"{key} must be a string, got {json.dumps(v)}", f"{pointer}/{key}")
    return str(v)


def parse_value_pattern(obj: Any, pointer: str = "") -> ValuePattern:
    """A ValuePattern from its WireMock JSON; raises InvalidStubError naming the JSON pointer."""
    if not isinstance(obj, dict):
        raise InvalidStubError(
            f"{json.dumps(obj)} is not a valid match operation (expected an object such as "
            '{"equalTo": "..."})',
            pointer,
        )
    op = next((k for k in _OPERATORS if k in obj), None)
    if op is None:
        import difflib

        guesses = [g for key in obj for g in difflib.get_close_matches(str(key), _OPERATORS, n=1)]
        hint = f" Did you mean {guesses[0]!r}?" if guesses else f" Operators: {', '.join(_OPERATORS)}."
        raise InvalidStubError(
            f"{json.dumps(obj, separators=(',', ':'))} is not a valid match operation.{hint}", pointer
        )
    if op == "equalTo":
        return EqualTo(str_option(obj, op, pointer), bool_option(obj, "caseInsensitive", pointer))
    if op == "binaryEqualTo":
        value = str_option(obj, op, pointer)
        try:
            base64.b64decode(value, validate=True)
        except ValueError as exc:
            raise InvalidStubError(f"binaryEqualTo must be base64: {exc}", f"{pointer}/{op}") from exc
        return BinaryEqualTo(value)
    if op == "contains":
        return Contains(str_option(obj, op, pointer))
    if op == "doesNotContain":
        return DoesNotContain(str_option(obj, op, pointer))
    if op in ("matches", "doesNotMatch"):
        value = str_option(obj, op, pointer)
        try:
            re.compile(_java_regex(value))
        except re.error as exc:
            raise InvalidStubError(
                f"{op}: {value!r} is not a valid regular expression: {exc}", f"{pointer}/{op}"
            ) from exc
        return Matches(value, negate=op == "doesNotMatch")
    if op == "absent":
        return Absent() if obj[op] is not False else Anything()
    if op == "anything":
        return Anything()
    if op == "not":
        return Not(parse_value_pattern(obj[op], f"{pointer}/not"))
    if op in ("and", "or"):
        parts = obj[op]
        if not isinstance(parts, list) or not parts:
            raise InvalidStubError(f"{op} needs a non-empty list of match operations", f"{pointer}/{op}")
        parsed = tuple(parse_value_pattern(p, f"{pointer}/{op}/{i}") for i, p in enumerate(parts))
        return LogicalAnd(parsed) if op == "and" else LogicalOr(parsed)
    if op in ("equalToJson", "matchesJsonPath", "matchesJsonSchema"):
        from testbed.stubs.json_operators import parse_json_operator  # imported by the mappings that use it

        return parse_json_operator(op, obj, pointer)
    if op in ("equalToXml", "matchesXPath"):
        from testbed.stubs.xml_operators import parse_xml_operator

        return parse_xml_operator(op, obj, pointer)
    from testbed.stubs.dates import parse_date_operator  # before / after / equalToDateTime

    return parse_date_operator(op, obj, pointer)


def parse_multi_value_pattern(obj: Any, pointer: str = "") -> MultiValuePattern:
    """A query/header/form parameter pattern: one operator, or ``hasExactly`` / ``includes`` lists."""
    if isinstance(obj, dict) and ("hasExactly" in obj or "includes" in obj):
        key = "hasExactly" if "hasExactly" in obj else "includes"
        items = obj[key]
        if not isinstance(items, list):
            raise InvalidStubError(f"{key} needs a list of match operations", f"{pointer}/{key}")
        parts = tuple(parse_value_pattern(p, f"{pointer}/{key}/{i}") for i, p in enumerate(items))
        return MultiValuePattern(exactly=parts) if key == "hasExactly" else MultiValuePattern(includes=parts)
    return MultiValuePattern(single=parse_value_pattern(obj, pointer))
