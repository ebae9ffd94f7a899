"""The shape of a SQL statement: its text with the values taken out, so that the same query run with other
values counts as the same query (query budgets, the N+1 detector).

``select * from orders where user_id = 42 and status in ('a', 'b')`` and the same with ``user_id = $1`` (as
the server logs a parameterised statement) or ``%(user_id)s`` (as SQLAlchemy sends it) all have the shape
``select * from orders where user_id = ? and status in (...)``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

_COMMENT = re.compile(r"/\*.*?\*/|--[^\n]*", re.S)
_STRING = re.compile(r"(?:\b[EeBbXxNn])?'(?:[^']|'')*'")
_DOLLAR_QUOTED = re.compile(r"\$(\w*)\$.*?\$\1\$", re.S)
_PLACEHOLDER = re.compile(r"\$\d+\b|%\(\w+\)s|%s|(?<![:\w]):[A-Za-z_]\w*|\?")
_NUMBER = re.compile(r"(?<![\w$.])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.])")
_LIST = re.compile(r"\(\s*\?(?:\s*,\s*\?)*\s*\)")  # (?, ?, ?) -> (...)
_ROWS = re.compile(r"\(\.\.\.\)(?:\s*,\s*\(\.\.\.\))+")  # VALUES (...), (...) -> VALUES (...)
_SPACE = re.compile(r"\s+")
_CONTROL = ("begin", "commit", "rollback", "savepoint", "release", "start transaction", "end", "set ", "show ",
            "discard", "reset ")


def shape(sql: str) -> str:
    """``sql`` with literals and placeholders as ``?``, value lists collapsed, whitespace and case of
    keywords aside (the text is lower-cased outside double-quoted identifiers)."""
    text = _COMMENT.sub(" ", sql)
    text = _DOLLAR_QUOTED.sub("?", text)
    text = _STRING.sub("?", text)
    text = _PLACEHOLDER.sub("?", text)
    text = _NUMBER.sub("?", text)
    text = _LIST.sub("(...)", text)
    text = _ROWS.sub("(...)", text)
    text = _SPACE.sub(" ", text).strip().rstrip(";").strip()
    parts = text.split('"')
    return '"'.join(p.lower() if i % 2 == 0 else p for i, p in enumerate(parts))


def is_query(sql_shape: str) -> bool:
    """Whether a statement counts towards a budget: transaction control and session settings do not."""
    return not sql_shape.startswith(_CONTROL) and sql_shape not in ("begin", "commit", "rollback", "end")


@dataclass(frozen=True)
class Repeat:
    """One statement shape a test ran more often than it should have."""

    shape: str
    count: int
    call_site: str = ""  # "app/repo.py:42 in load_orders" when known

    def describe(self) -> str:
        where = f"\n      from {self.call_site}" if self.call_site else ""
        return f"{self.count}x  {self.shape[:300]}{where}"


def repeats(shapes: Iterable[str], more_than: int, call_sites: dict[str, str] | None = None) -> list[Repeat]:
    """The shapes seen more than ``more_than`` times, most frequent first."""
    counts = Counter(s for s in shapes if is_query(s))
    sites = call_sites or {}
    return [Repeat(s, n, sites.get(s, "")) for s, n in counts.most_common() if n > more_than]
