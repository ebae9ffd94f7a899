"""Deciding whether a captured message is the one a test waits for, and saying why not.

A matcher is a dict (the payload must contain it, recursively), a predicate (a callable returning a
truthy value), or a JSON Schema (wrapped in :class:`JsonSchema` so it is not read as a dict subset).
Every check returns the reasons it failed, which the timeout report prints next to each message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema

_MISSING = object()


@dataclass(frozen=True)
class JsonSchema:
    """Match messages whose decoded payload validates against a JSON Schema."""

    schema: Mapping[str, Any]

    def reasons(self, payload: Any) -> list[str]:
        validator_cls = jsonschema.validators.validator_for(self.schema)
        validator = validator_cls(self.schema)
        errors = sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path))
        return [f"schema: {_json_path(e.absolute_path)}: {e.message}" for e in errors]

    def describe(self) -> str:
        return f"JSON Schema {dict(self.schema)!r}"


Matcher = Mapping[str, Any] | Callable[[Any], object] | JsonSchema | None


def _json_path(parts: Sequence[Any]) -> str:
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def subset_reasons(expected: Any, actual: Any, path: str = "$") -> list[str]:
    """Why ``actual`` does not contain ``expected``: dicts by subset, lists item by item, else equality."""
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return [f"{path}: expected an object, got {type(actual).__name__} {_short(actual)}"]
        reasons: list[str] = []
        for key, want in expected.items():
            got = actual.get(key, _MISSING)
            if got is _MISSING:
                reasons.append(f"{path}.{key}: missing (expected {_short(want)})")
            else:
                reasons += subset_reasons(want, got, f"{path}.{key}")
        return reasons
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{path}: expected a list, got {type(actual).__name__} {_short(actual)}"]
        if len(expected) != len(actual):
            return [f"{path}: expected {len(expected)} items, got {len(actual)}: {_short(actual)}"]
        out: list[str] = []
        for i, (want, got) in enumerate(zip(expected, actual)):
            out += subset_reasons(want, got, f"{path}[{i}]")
        return out
    if expected != actual or type(expected) is not type(actual) and not _both_numbers(expected, actual):
        return [f"{path}: expected {_short(expected)}, got {_short(actual)}"]
    return []


def _both_numbers(a: Any, b: Any) -> bool:
    return all(isinstance(x, int | float) and not isinstance(x, bool) for x in (a, b))


def reasons(matcher: Matcher, payload: Any) -> list[str]:
    """Why ``payload`` does not satisfy ``matcher`` (an empty list means it matches)."""
    if matcher is None:
        return []
    if isinstance(matcher, JsonSchema):
        return matcher.reasons(payload)
    if isinstance(matcher, Mapping):
        return subset_reasons(matcher, payload)
    if callable(matcher):
        try:
            ok = matcher(payload)
        except Exception as exc:  # a predicate that raises on a foreign message is a non-match, not a crash
            return [f"predicate {_callable_name(matcher)} raised {type(exc).__name__}: {exc}"]
        return [] if ok else [f"predicate {_callable_name(matcher)} returned {ok!r}"]
    raise TypeError(
        f"events: match= must be a dict (subset), a callable (predicate) or testbed.events.JsonSchema(...), "
        f"got {type(matcher).__name__}"
    )


def describe(matcher: Matcher) -> str:
    """A one-line description of a matcher for messages."""
    if matcher is None:
        return "any message"
    if isinstance(matcher, JsonSchema):
        return matcher.describe()
    if isinstance(matcher, Mapping):
        return f"a payload containing {_short(dict(matcher), 200)}"
    return f"predicate {_callable_name(matcher)}"


def _callable_name(fn: Callable[..., object]) -> str:
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    return str(name)
