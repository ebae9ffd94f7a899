"""JSONPath as WireMock evaluates it (Jayway's dialect)."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from testbed.stubs.errors import InvalidStubError


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


