"""JSON parsing with a nesting limit, for everything the stub server reads from the outside.

Python's parser raises RecursionError on a deeply nested document (``[[[[...]]]]`` 200,000 levels deep),
and the matchers, the admin API's echo and the templating walk documents recursively too. WireMock's
Jackson refuses documents nested more than 1000 levels; testbed refuses them past ``MAX_DEPTH`` (Python's
recursion limit is 1000 frames in all, so the same figure would not leave room for the walkers).
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 500
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


class JsonTooDeepError(ValueError):
    """A JSON document nests objects and arrays deeper than ``MAX_DEPTH``."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        super().__init__(
            f"JSON nesting depth ({depth}) exceeds the maximum allowed ({MAX_DEPTH}): flatten the document"
        )


def nesting_depth(text: str, stop_after: int = MAX_DEPTH) -> int:
    """How deep ``text`` nests (strings skipped); stops counting once past ``stop_after``."""
    if text.count("[") + text.count("{") <= stop_after:
        return 0  # cannot be too deep: the cheap, common case
    depth = deepest = 0
    for m in _TOKENS.finditer(text):
        c = m.group()
        if c in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > stop_after:
                    return deepest
        elif c in "]}":
            depth -= 1
    return deepest


def loads(text: str | bytes) -> Any:
    """``json.loads`` that raises JsonTooDeepError (a ValueError) instead of recursing without bound."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    depth = nesting_depth(text)
    if depth > MAX_DEPTH:
        raise JsonTooDeepError(depth)
    try:
        return json.loads(text)
    except RecursionError as exc:  # a caller already deep in its own stack
        raise JsonTooDeepError(MAX_DEPTH + 1) from exc
