"""How the JVM prints values (WireMock's answers are Java's ``String.valueOf``): doubles, lists, maps."""

from __future__ import annotations

import json
import math
from typing import Any


def double_text(x: float) -> str:
    """Java's ``Double.toString``: ``3.0``, ``0.001``, ``1.0E7``, ``1.234E-5``, ``NaN``, ``Infinity``."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    a = abs(x)
    if 1e-3 <= a < 1e7:
        text = repr(x)
        if "e" in text or "E" in text:  # repr switches to exponents earlier than Java for some values
            text = f"{x:f}".rstrip("0")
        return text if "." in text else text + ".0"
    exponent = int(f"{x:e}".partition("e")[2])
    return f"{_shortest_mantissa(x)}E{exponent}"


def _shortest_mantissa(x: float) -> str:
    """The digits of ``x`` (shortest round-trip) as d.ddd, for the scientific form."""
    text = repr(abs(x))
    sign = "-" if x < 0 else ""
    if "e" in text:
        m, _, _ = text.partition("e")
    else:
        # e.g. 12345678.0 -> 1.2345678
        digits = text.replace(".", "").lstrip("0").rstrip("0") or "0"
        m = digits[0] + "." + (digits[1:] or "0")
    if "." not in m:
        m += ".0"
    return sign + m


def value_text(value: Any) -> str:
    """``String.valueOf`` of a JSON value as Jayway / Jackson hold it."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        return double_text(value)
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def collection_text(value: Any) -> str:
    """Java's ``AbstractCollection.toString`` / ``AbstractMap.toString``: ``[a, b]``, ``{k=v}``."""
    if isinstance(value, list | tuple):
        return "[" + ", ".join(collection_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={collection_text(v)}" for k, v in value.items()) + "}"
    return value_text(value)


def _java_string_hash(s: str) -> int:
    h = 0
    data = s.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h


def java_hash_order(keys: list[str]) -> list[str]:
    """The iteration order of a java.util.HashMap holding ``keys`` (inserted in this order)."""
    n = 16
    while len(keys) > n * 0.75:
        n *= 2

    def bucket(k: str) -> int:
        h = _java_string_hash(k)
        return (h ^ (h >> 16)) & (n - 1)

    return [k for _, _, k in sorted((bucket(k), i, k) for i, k in enumerate(keys))]
