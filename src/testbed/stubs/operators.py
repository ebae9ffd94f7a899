"""WireMock's value matchers ("string value patterns"): parsing from JSON, matching, match distance.

Each pattern answers two questions: ``matches(value)`` on the hot path (cheap, boolean) and
``distance(value)`` (0.0 = exact, 1.0 = nothing alike) for near-miss reports only. ``value`` is ``None``
when the header, query parameter, cookie... is absent.
"""

from __future__ import annotations

import base64
import calendar
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import cached_property, lru_cache
from typing import Any

from testbed.stubs import bounded_json
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


def levenshtein_ratio(a: str, b: str) -> float:
    """Normalised edit distance in [0, 1]: WireMock's distance for equalTo."""
    if a == b:
        return 0.0
    if not a or not b:
        return 1.0
    if len(a) * len(b) > 4_000_000:  # long bodies: a precise figure is not worth seconds of CPU
        return 1.0
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1] / max(len(a), len(b))


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
        return re.compile(_java_regex(self.value))

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


# --- JSON --------------------------------------------------------------------------------------------

_MISSING = object()


def _parse_json(text: str | None) -> Any:
    if text is None:
        return _MISSING
    try:
        return bounded_json.loads(text)
    except ValueError:
        return _MISSING


def _same_scalar(expected: Any, actual: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    return bool(type(expected) is type(actual) and expected == actual) or (
        isinstance(expected, int | float) and isinstance(actual, int | float) and expected == actual
    )


def json_differences(
    expected: Any,
    actual: Any,
    *,
    ignore_array_order: bool = False,
    ignore_extra: bool = False,
    path: str = "$",
) -> list[str]:
    """Where ``actual`` differs from ``expected``, honouring json-unit placeholders in ``expected``."""
    if isinstance(expected, str) and expected.startswith("${json-unit."):
        placeholder = expected[len("${json-unit.") :]
        if placeholder in ("ignore}", "ignore-element}"):
            return []
        if placeholder == "any-string}":
            return (
                [] if isinstance(actual, str) else [f"{path}: expected any string, got {json.dumps(actual)}"]
            )
        if placeholder == "any-number}":
            ok = isinstance(actual, int | float) and not isinstance(actual, bool)
            return [] if ok else [f"{path}: expected any number, got {json.dumps(actual)}"]
        if placeholder == "any-boolean}":
            return (
                []
                if isinstance(actual, bool)
                else [f"{path}: expected any boolean, got {json.dumps(actual)}"]
            )
        if placeholder.startswith("regex}"):
            regex = placeholder[len("regex}") :]
            ok = isinstance(actual, str) and re.fullmatch(regex, actual) is not None
            return [] if ok else [f"{path}: expected a match of /{regex}/, got {json.dumps(actual)}"]
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object, got {json.dumps(actual)}"]
        diffs: list[str] = []
        for key, value in expected.items():
            if key not in actual:
                if value != "${json-unit.ignore}":
                    diffs.append(f"{path}.{key}: missing")
                continue
            diffs += json_differences(
                value,
                actual[key],
                ignore_array_order=ignore_array_order,
                ignore_extra=ignore_extra,
                path=f"{path}.{key}",
            )
        if not ignore_extra:
            diffs += [f"{path}.{key}: unexpected" for key in actual if key not in expected]
        return diffs
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{path}: expected an array, got {json.dumps(actual)}"]
        return _array_differences(expected, actual, ignore_array_order, ignore_extra, path)
    if _same_scalar(expected, actual):
        return []
    return [f"{path}: expected {json.dumps(expected)}, got {json.dumps(actual)}"]


def _array_differences(
    expected: list[Any], actual: list[Any], ignore_order: bool, ignore_extra: bool, path: str
) -> list[str]:
    wanted = [e for e in expected if e != "${json-unit.ignore-element}"]
    if len(actual) < len(wanted) or (not ignore_extra and len(actual) != len(expected)):
        return [f"{path}: expected {len(expected)} elements, got {len(actual)}"]
    if not ignore_order:
        diffs: list[str] = []
        for i, e in enumerate(expected):
            if i < len(actual):
                diffs += json_differences(
                    e,
                    actual[i],
                    ignore_array_order=ignore_order,
                    ignore_extra=ignore_extra,
                    path=f"{path}[{i}]",
                )
        return diffs
    used: set[int] = set()
    for i, e in enumerate(wanted):
        for j, a in enumerate(actual):
            if j not in used and not json_differences(
                e, a, ignore_array_order=True, ignore_extra=ignore_extra
            ):
                used.add(j)
                break
        else:
            return [f"{path}[{i}]: no element matches {json.dumps(e)}"]
    return []


def _count_nodes(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + sum(_count_nodes(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(_count_nodes(v) for v in value)
    return 1


@dataclass(frozen=True)
class EqualToJson(ValuePattern):
    value: Any  # the expected JSON document, parsed
    ignore_array_order: bool = False
    ignore_extra_elements: bool = False
    as_string: bool = False  # given as a JSON string in the mapping: echo it back the same way
    operator = "equalToJson"

    def differences(self, value: str | None) -> list[str]:
        actual = _parse_json(value)
        if actual is _MISSING:
            return ["body is not JSON"]
        return json_differences(
            self.value,
            actual,
            ignore_array_order=self.ignore_array_order,
            ignore_extra=self.ignore_extra_elements,
        )

    def matches(self, value: str | None) -> bool:
        return not self.differences(value)

    def distance(self, value: str | None) -> float:
        diffs = self.differences(value)
        return min(1.0, len(diffs) / _count_nodes(self.value)) if diffs else 0.0

    def to_json(self) -> JsonObj:
        out: JsonObj = {"equalToJson": json.dumps(self.value) if self.as_string else self.value}
        if self.ignore_array_order:
            out["ignoreArrayOrder"] = True
        if self.ignore_extra_elements:
            out["ignoreExtraElements"] = True
        return out

    @property
    def expected(self) -> str:
        return json.dumps(self.value, indent=2)


def _jsonpath_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


@lru_cache(maxsize=512)  # templates compile per render; jsonpath-ng's parser is slow (PLY)
def compile_jsonpath(expression: str) -> Callable[[Any], list[Any]]:
    """A JSONPath (Jayway dialect, the common subset) as a function document -> list of results."""
    from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
    from jsonpath_ng.ext.parser import parse

    expr = expression.strip()
    length = expr.endswith(".length()") or expr.endswith(".size()")
    if length:
        expr = expr.rsplit(".", 1)[0]
    try:
        compiled = parse(expr)
    except (JsonPathLexerError, JsonPathParserError, Exception) as exc:
        raise InvalidStubError(f"invalid JSONPath expression {expression!r}: {exc}") from exc

    def find(doc: Any) -> list[Any]:
        found = [m.value for m in compiled.find(doc)]
        if length:
            return [len(v) for v in found if isinstance(v, list | dict | str)]
        return found

    return find


@dataclass(frozen=True)
class MatchesJsonPath(ValuePattern):
    expression: str
    sub: ValuePattern | None = None
    operator = "matchesJsonPath"

    @cached_property
    def _find(self) -> Callable[[Any], list[Any]]:
        return compile_jsonpath(self.expression)

    def _results(self, value: str | None) -> list[Any] | None:
        doc = _parse_json(value)
        if doc is _MISSING:
            return None
        try:
            return self._find(doc)
        except Exception:  # a type error inside a filter on this document: no match, like Jayway
            return None

    def matches(self, value: str | None) -> bool:
        results = self._results(value)
        if results is None:
            return False
        if self.sub is None:
            return any(r is not None and r != [] for r in results)
        if not results:
            return self.sub.matches(None)
        if len(results) > 1 and isinstance(self.sub, EqualToJson):
            return self.sub.matches(json.dumps(results))
        return any(self.sub.matches(_jsonpath_text(r)) for r in results)

    def to_json(self) -> JsonObj:
        if self.sub is None:
            return {"matchesJsonPath": self.expression}
        return {"matchesJsonPath": {"expression": self.expression, **self.sub.to_json()}}

    @property
    def expected(self) -> str:
        return self.expression if self.sub is None else f"{self.expression} {self.sub.describe()}"


@dataclass(frozen=True)
class MatchesJsonSchema(ValuePattern):
    schema: Any
    schema_version: str | None = None
    as_string: bool = False
    operator = "matchesJsonSchema"

    @cached_property
    def _validator(self) -> Any:
        import jsonschema

        cls = jsonschema.validators.validator_for(self.schema)
        return cls(self.schema)

    def matches(self, value: str | None) -> bool:
        doc = _parse_json(value)
        if doc is _MISSING:
            return False
        return bool(self._validator.is_valid(doc))

    def to_json(self) -> JsonObj:
        out: JsonObj = {"matchesJsonSchema": json.dumps(self.schema) if self.as_string else self.schema}
        if self.schema_version:
            out["schemaVersion"] = self.schema_version
        return out


# --- XML ---------------------------------------------------------------------------------------------


def _xml_parse(text: str) -> Any:
    from lxml import etree

    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    return etree.fromstring(text.strip().encode("utf-8"), parser)


def _xml_equal(exp: Any, act: Any, placeholders: bool, any_order: bool) -> bool:
    if exp.tag != act.tag:
        return False
    ignore = "${xmlunit.ignore}"
    exp_attrs, act_attrs = dict(exp.attrib), dict(act.attrib)
    if exp_attrs.keys() != act_attrs.keys():
        return False
    for k, v in exp_attrs.items():
        if not (placeholders and v == ignore) and v != act_attrs[k]:
            return False
    et, at = (exp.text or "").strip(), (act.text or "").strip()
    if not (placeholders and et == ignore) and et != at:
        return False
    ec, ac = [c for c in exp if isinstance(c.tag, str)], [c for c in act if isinstance(c.tag, str)]
    if len(ec) != len(ac):
        return False
    if not any_order:
        return all(_xml_equal(e, a, placeholders, any_order) for e, a in zip(ec, ac))
    used: set[int] = set()
    for e in ec:
        for j, a in enumerate(ac):
            if j not in used and _xml_equal(e, a, placeholders, any_order):
                used.add(j)
                break
        else:
            return False
    return True


@dataclass(frozen=True)
class EqualToXml(ValuePattern):
    value: str
    enable_placeholders: bool = False
    ignore_order_of_same_node: bool = False
    extra: tuple[tuple[str, Any], ...] = ()
    operator = "equalToXml"

    @cached_property
    def _expected(self) -> Any:
        try:
            return _xml_parse(self.value)
        except Exception as exc:
            raise InvalidStubError(f"equalToXml value is not well-formed XML: {exc}") from exc

    def matches(self, value: str | None) -> bool:
        if not value:
            return False
        try:
            actual = _xml_parse(value)
        except Exception:
            return False
        return _xml_equal(self._expected, actual, self.enable_placeholders, self.ignore_order_of_same_node)

    def to_json(self) -> JsonObj:
        out: JsonObj = {"equalToXml": self.value}
        if self.enable_placeholders:
            out["enablePlaceholders"] = True
        if self.ignore_order_of_same_node:
            out["ignoreOrderOfSameNode"] = True
        out.update(dict(self.extra))
        return out


@dataclass(frozen=True)
class MatchesXPath(ValuePattern):
    expression: str
    namespaces: tuple[tuple[str, str], ...] = ()
    sub: ValuePattern | None = None
    operator = "matchesXPath"

    @cached_property
    def _xpath(self) -> Any:
        from lxml import etree

        try:
            return etree.XPath(self.expression, namespaces=dict(self.namespaces) or None)
        except etree.XPathSyntaxError as exc:
            raise InvalidStubError(f"invalid XPath expression {self.expression!r}: {exc}") from exc

    def matches(self, value: str | None) -> bool:
        if not value:
            return False
        try:
            result = self._xpath(_xml_parse(value))
        except Exception:
            return False
        if isinstance(result, list):
            if self.sub is None:
                return bool(result)
            return any(self.sub.matches(_xpath_text(r)) for r in result)
        if self.sub is None:
            return bool(result)
        return self.sub.matches(_xpath_text(result))

    def to_json(self) -> JsonObj:
        inner: Any = self.expression
        if self.sub is not None:
            inner = {"expression": self.expression, **self.sub.to_json()}
        out: JsonObj = {"matchesXPath": inner}
        if self.namespaces:
            out["xPathNamespaces"] = dict(self.namespaces)
        return out


def _xpath_text(node: Any) -> str:
    from lxml import etree

    if isinstance(node, etree._Element):
        if len(node):
            return str(etree.tostring(node, encoding="unicode")).strip()
        return node.text or ""
    if isinstance(node, float) and node.is_integer():
        return str(int(node))
    return str(node)


# --- dates -------------------------------------------------------------------------------------------

_UNITS = {
    "second": "seconds",
    "minute": "minutes",
    "hour": "hours",
    "day": "days",
    "week": "weeks",
    "month": "months",
    "year": "years",
    "milli": "milliseconds",
    "millisecond": "milliseconds",
}


def _add_offset(base: datetime, amount: int, unit: str) -> datetime:
    unit = unit.lower().rstrip("s")
    if unit in ("month", "year"):
        months = amount * (12 if unit == "year" else 1)
        y, m = divmod(base.month - 1 + months, 12)
        year, month = base.year + y, m + 1
        day = min(base.day, calendar.monthrange(year, month)[1])
        return base.replace(year=year, month=month, day=day)
    if unit not in _UNITS:
        raise InvalidStubError(
            f"unknown date offset unit {unit!r}; use seconds, minutes, hours, days, weeks, months or years"
        )
    return base + timedelta(**{_UNITS[unit]: amount})


def _truncate(dt: datetime, how: str | None) -> datetime:
    if not how:
        return dt
    h = how.lower()
    table: dict[str, Callable[[datetime], datetime]] = {
        "first second of minute": lambda d: d.replace(microsecond=0),
        "first minute of hour": lambda d: d.replace(minute=0, second=0, microsecond=0),
        "first hour of day": lambda d: d.replace(hour=0, minute=0, second=0, microsecond=0),
        "first day of month": lambda d: d.replace(day=1, hour=0, minute=0, second=0, microsecond=0),
        "first day of next month": lambda d: _add_offset(
            d.replace(day=1, hour=0, minute=0, second=0, microsecond=0), 1, "months"
        ),
        "last day of month": lambda d: d.replace(
            day=calendar.monthrange(d.year, d.month)[1], hour=0, minute=0, second=0, microsecond=0
        ),
        "first day of year": lambda d: d.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0),
        "first day of next year": lambda d: d.replace(
            year=d.year + 1, month=1, day=1, hour=0, minute=0, second=0, microsecond=0
        ),
        "last day of year": lambda d: d.replace(month=12, day=31, hour=0, minute=0, second=0, microsecond=0),
    }
    if h not in table:
        raise InvalidStubError(f"unknown date truncation {how!r}; valid: {', '.join(table)}")
    return table[h](dt)


_JAVA_FORMAT = [
    ("yyyy", "%Y"),
    ("yy", "%y"),
    ("MMM", "%b"),
    ("MM", "%m"),
    ("dd", "%d"),
    ("HH", "%H"),
    ("mm", "%M"),
    ("ss", "%S"),
    ("SSS", "%f"),
    ("EEE", "%a"),
    ("Z", "%z"),
    ("XXX", "%z"),
]


def java_date_format_to_strftime(fmt: str) -> str:
    """Translate the common tokens of a Java DateTimeFormatter pattern to strftime."""
    out = fmt.replace("'T'", "T")
    for java, py in _JAVA_FORMAT:
        out = out.replace(java, py)
    return out


def parse_datetime(text: str, fmt: str | None = None) -> datetime | None:
    """An ISO-8601 / RFC 1123 / epoch-millis date-time (or one in a Java format), as an aware datetime."""
    text = text.strip()
    try:
        if fmt:
            if fmt == "unix":
                return datetime.fromtimestamp(int(text), UTC)
            if fmt == "epoch":
                return datetime.fromtimestamp(int(text) / 1000, UTC)
            dt = datetime.strptime(text, java_date_format_to_strftime(fmt))
        elif re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            dt = datetime.fromisoformat(text)
        elif re.match(r"\d{4}-\d{2}-\d{2}[T ]", text):
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        else:
            dt = parsedate_to_datetime(text)
    except (ValueError, TypeError, IndexError, OverflowError):
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


@dataclass(frozen=True)
class DateTimePattern(ValuePattern):
    kind: str  # before | after | equalToDateTime
    value: str
    actual_format: str | None = None
    expected_offset: int | None = None
    expected_offset_unit: str | None = None
    truncate_expected: str | None = None
    truncate_actual: str | None = None
    apply_truncation_last: bool = False

    @property
    def operator(self) -> str:  # type: ignore[override]
        return self.kind

    def expected_datetime(self) -> datetime:
        text = self.value.strip()
        m = re.fullmatch(r"now(?:\s*([+-])\s*(\d+)\s+(\w+))?", text, re.IGNORECASE)
        if m:
            dt = datetime.now(UTC)
            if m.group(1):
                amount = int(m.group(2)) * (-1 if m.group(1) == "-" else 1)
                dt = _add_offset(dt, amount, m.group(3))
        else:
            parsed = parse_datetime(text)
            if parsed is None:
                raise InvalidStubError(
                    f"{self.operator}: {self.value!r} is not a date-time; use ISO-8601 "
                    "(2024-01-31T10:00:00Z) or now +/-N units"
                )
            dt = parsed
        if self.apply_truncation_last:
            if self.expected_offset is not None:
                dt = _add_offset(dt, self.expected_offset, self.expected_offset_unit or "days")
            return _truncate(dt, self.truncate_expected)
        dt = _truncate(dt, self.truncate_expected)
        if self.expected_offset is not None:
            dt = _add_offset(dt, self.expected_offset, self.expected_offset_unit or "days")
        return dt

    def matches(self, value: str | None) -> bool:
        if value is None:
            return False
        actual = parse_datetime(value, self.actual_format)
        if actual is None:
            return False
        actual = _truncate(actual, self.truncate_actual)
        expected = self.expected_datetime()
        if self.operator == "before":
            return actual < expected
        if self.operator == "after":
            return actual > expected
        return actual == expected

    def to_json(self) -> JsonObj:
        out: JsonObj = {self.operator: self.value}
        for key, v in (
            ("actualFormat", self.actual_format),
            ("expectedOffset", self.expected_offset),
            ("expectedOffsetUnit", self.expected_offset_unit),
            ("truncateExpected", self.truncate_expected),
            ("truncateActual", self.truncate_actual),
        ):
            if v is not None:
                out[key] = v
        if self.apply_truncation_last:
            out["applyTruncationLast"] = True
        return out


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


def _bool(obj: Mapping[str, Any], key: str, pointer: str) -> bool:
    v = obj.get(key, False)
    if v is None:
        return False
    if not isinstance(v, bool):
        raise InvalidStubError(f"{key} must be true or false, got {json.dumps(v)}", f"{pointer}/{key}")
    return v


def _str(obj: Mapping[str, Any], key: str, pointer: str) -> str:
    v = obj[key]
    if isinstance(v, bool) or v is None or isinstance(v, dict | list):
        raise InvalidStubError(f"{key} must be a string, got {json.dumps(v)}", f"{pointer}/{key}")
    return str(v)


def _json_value(obj: Mapping[str, Any], key: str, pointer: str) -> tuple[Any, bool]:
    v = obj[key]
    if isinstance(v, str):
        try:
            return bounded_json.loads(v), True
        except ValueError as exc:
            raise InvalidStubError(f"{key} is not valid JSON: {exc}", pointer) from exc
    return v, False


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
        return EqualTo(_str(obj, op, pointer), _bool(obj, "caseInsensitive", pointer))
    if op == "binaryEqualTo":
        value = _str(obj, op, pointer)
        try:
            base64.b64decode(value, validate=True)
        except ValueError as exc:
            raise InvalidStubError(f"binaryEqualTo must be base64: {exc}", f"{pointer}/{op}") from exc
        return BinaryEqualTo(value)
    if op == "contains":
        return Contains(_str(obj, op, pointer))
    if op == "doesNotContain":
        return DoesNotContain(_str(obj, op, pointer))
    if op in ("matches", "doesNotMatch"):
        value = _str(obj, op, pointer)
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
    if op == "equalToJson":
        value, as_string = _json_value(obj, op, pointer)
        return EqualToJson(
            value,
            _bool(obj, "ignoreArrayOrder", pointer),
            _bool(obj, "ignoreExtraElements", pointer),
            as_string,
        )
    if op == "matchesJsonPath":
        spec = obj[op]
        if isinstance(spec, str):
            pattern = MatchesJsonPath(spec)
        elif isinstance(spec, dict) and isinstance(spec.get("expression"), str):
            rest = {k: v for k, v in spec.items() if k != "expression"}
            pattern = MatchesJsonPath(spec["expression"], parse_value_pattern(rest, f"{pointer}/{op}"))
        else:
            raise InvalidStubError(
                'matchesJsonPath needs a JSONPath string or {"expression": ..., <operator>}',
                f"{pointer}/{op}",
            )
        compile_jsonpath(pattern.expression)
        return pattern
    if op == "matchesJsonSchema":
        schema, as_string = _json_value(obj, op, pointer)
        version = obj.get("schemaVersion")
        return MatchesJsonSchema(schema, str(version) if version else None, as_string)
    if op == "equalToXml":
        known = {"equalToXml", "enablePlaceholders", "ignoreOrderOfSameNode"}
        xml = EqualToXml(
            _str(obj, op, pointer),
            _bool(obj, "enablePlaceholders", pointer),
            _bool(obj, "ignoreOrderOfSameNode", pointer),
            tuple((k, v) for k, v in obj.items() if k not in known),
        )
        try:
            xml._expected  # noqa: B018  # parse now so a bad mapping fails when added, not when matched
        except InvalidStubError as exc:
            raise InvalidStubError(exc.detail, f"{pointer}/{op}") from exc
        return xml
    if op == "matchesXPath":
        spec = obj[op]
        ns = obj.get("xPathNamespaces") or {}
        namespaces = tuple(sorted((str(k), str(v)) for k, v in ns.items()))
        if isinstance(spec, str):
            xp = MatchesXPath(spec, namespaces)
        elif isinstance(spec, dict) and isinstance(spec.get("expression"), str):
            rest = {k: v for k, v in spec.items() if k != "expression"}
            xp = MatchesXPath(spec["expression"], namespaces, parse_value_pattern(rest, f"{pointer}/{op}"))
        else:
            raise InvalidStubError(
                'matchesXPath needs an XPath string or {"expression": ..., <operator>}', f"{pointer}/{op}"
            )
        try:
            xp._xpath  # noqa: B018
        except InvalidStubError as exc:
            raise InvalidStubError(exc.detail, f"{pointer}/{op}") from exc
        return xp
    # before / after / equalToDateTime
    offset = obj.get("expectedOffset")
    dtp = DateTimePattern(
        op,
        _str(obj, op, pointer),
        actual_format=obj.get("actualFormat"),
        expected_offset=int(offset) if offset is not None else None,
        expected_offset_unit=obj.get("expectedOffsetUnit"),
        truncate_expected=obj.get("truncateExpected"),
        truncate_actual=obj.get("truncateActual"),
        apply_truncation_last=_bool(obj, "applyTruncationLast", pointer),
    )
    try:
        dtp.expected_datetime()
        _truncate(datetime.now(UTC), dtp.truncate_actual)
    except InvalidStubError as exc:
        raise InvalidStubError(exc.detail, f"{pointer}/{op}") from exc
    return dtp


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
