"""The JSON operators: equalToJson (with json-unit placeholders), matchesJsonPath, matchesJsonSchema."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from testbed.stubs import bounded_json
from testbed.stubs.errors import InvalidStubError
from testbed.stubs.java_text import value_text
from testbed.stubs.jsonpath import JsonPath, JsonPathError, PathNotFound, compile_jsonpath
from testbed.stubs.operators import Absent, ValuePattern, bool_option, parse_value_pattern

JsonObj = dict[str, Any]

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
            return [] if isinstance(actual, str) else [f"{path}: expected any string, got {json.dumps(actual)}"]
        if placeholder == "any-number}":
            ok = isinstance(actual, int | float) and not isinstance(actual, bool)
            return [] if ok else [f"{path}: expected any number, got {json.dumps(actual)}"]
        if placeholder == "any-boolean}":
            return [] if isinstance(actual, bool) else [f"{path}: expected any boolean, got {json.dumps(actual)}"]
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
                diffs.append(f"{path}.{key}: missing")  # ${json-unit.ignore} needs the key to be there
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
            if j not in used and not json_differences(e, a, ignore_array_order=True, ignore_extra=ignore_extra):
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


@dataclass(frozen=True)
class MatchesJsonPath(ValuePattern):
    """WireMock's matchesJsonPath: Jayway's read, then WireMock's rules for what counts as found."""

    expression: str
    sub: ValuePattern | None = None
    operator = "matchesJsonPath"

    @cached_property
    def _path(self) -> JsonPath:
        return compile_jsonpath(self.expression)

    def _read(self, value: str | None) -> Any:
        """The expression's value on the document; raises JsonPathError when WireMock sees no match."""
        if value is None or value.strip().startswith("<"):  # WireMock does not even try XML
            raise JsonPathError("not JSON")
        doc = _parse_json(value)
        if doc is _MISSING:
            raise JsonPathError("not JSON")
        return self._path.read(doc)

    def matches(self, value: str | None) -> bool:
        if self.sub is None:
            try:
                found = self._read(value)
            except JsonPathError:
                return False
            if isinstance(found, list | dict):
                return bool(found)  # WireMock 3.13: an empty array or object is no match, definite or not
            return found is not None
        try:
            texts = self.expression_result(value)
        except JsonPathError:
            return False
        if not texts and isinstance(self.sub, Absent):
            texts = [None]
        return any(self.sub.matches(t) for t in texts)

    def expression_result(self, value: str | None) -> list[str | None]:
        """What the sub-operator is applied to (WireMock's getExpressionResult): one text per value."""
        try:
            found = self._read(value)
        except PathNotFound:
            return []
        if isinstance(found, dict) or (isinstance(found, list) and isinstance(self.sub, EqualToJson)):
            return [json.dumps(found, separators=(",", ":"), ensure_ascii=False)]
        if isinstance(found, list):
            return [value_text(v) for v in found]
        if found is None:
            return []
        return [value_text(found)]

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


def _json_value(obj: Mapping[str, Any], key: str, pointer: str) -> tuple[Any, bool]:
    v = obj[key]
    if isinstance(v, str):
        try:
            return bounded_json.loads(v), True
        except ValueError as exc:
            raise InvalidStubError(f"{key} is not valid JSON: {exc}", pointer) from exc
    return v, False


def parse_json_operator(op: str, obj: Mapping[str, Any], pointer: str) -> ValuePattern:
    """equalToJson / matchesJsonPath / matchesJsonSchema from their WireMock JSON."""
    if op == "equalToJson":
        value, as_string = _json_value(obj, op, pointer)
        return EqualToJson(
            value,
            bool_option(obj, "ignoreArrayOrder", pointer),
            bool_option(obj, "ignoreExtraElements", pointer),
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
    raise AssertionError(op)
