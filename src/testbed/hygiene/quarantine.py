"""The quarantine file: tests that still run and report, but whose failures cannot fail the build, until
a date by which their owner fixes them.

```toml
# testbed-quarantine.toml
[[test]]
id = "tests/integration/test_payments.py::test_webhook_retry"   # a test, a parametrized family, a class
reason = "races with the webhook thread (#123)"
owner = "sam@example.com"
expires = 2026-12-31                                             # a TOML date
```

An entry past its date fails the build, naming the owner: a quarantine is a loan, not a bin.
"""

from __future__ import annotations

import datetime as dt
import difflib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testbed.errors import ConfigError

ENTRY_KEYS = ("id", "reason", "owner", "expires")


@dataclass(frozen=True)
class QuarantineEntry:
    """One quarantined test (or family of tests)."""

    id: str
    reason: str
    owner: str
    expires: dt.date

    def covers(self, nodeid: str) -> bool:
        """The entry's id names this test, its parametrized family, or a class or module containing it."""
        return nodeid == self.id or nodeid.startswith((self.id + "::", self.id + "["))

    def expired(self, today: dt.date) -> bool:
        return today > self.expires

    def describe(self) -> str:
        return f"{self.reason} (owner {self.owner}, until {self.expires.isoformat()})"


@dataclass(frozen=True)
class Quarantine:
    path: Path
    entries: tuple[QuarantineEntry, ...] = ()

    def entry_for(self, nodeid: str) -> QuarantineEntry | None:
        # The longest id wins: a test's own entry over its module's.
        found = [e for e in self.entries if e.covers(nodeid)]
        return max(found, key=lambda e: len(e.id)) if found else None

    def expired(self, today: dt.date) -> list[QuarantineEntry]:
        return [e for e in self.entries if e.expired(today)]


def _problem(path: Path, index: int, text: str) -> ConfigError:
    return ConfigError(f"{path}: [[test]] entry {index + 1}: {text}")


def parse_quarantine(text: str, path: Path) -> Quarantine:
    """Validate the quarantine file's text."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    unknown = [k for k in data if k != "test"]
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key {unknown[0]!r}; the file holds [[test]] entries only.")
    tables = data.get("test", [])
    if not isinstance(tables, list):
        raise ConfigError(f"{path}: write each entry as a [[test]] table (an array of tables).")
    entries: list[QuarantineEntry] = []
    seen: dict[str, int] = {}
    for i, table in enumerate(tables):
        entry = _entry(table, path, i)
        if entry.id in seen:
            raise _problem(path, i, f"id {entry.id!r} is already quarantined by entry {seen[entry.id] + 1}.")
        seen[entry.id] = i
        entries.append(entry)
    return Quarantine(path, tuple(entries))


def _entry(table: dict[str, Any], path: Path, i: int) -> QuarantineEntry:
    for key in table:
        if key not in ENTRY_KEYS:
            close = difflib.get_close_matches(key, ENTRY_KEYS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise _problem(path, i, f"unknown key {key!r}.{hint} Valid: {', '.join(ENTRY_KEYS)}.")
    missing = [k for k in ENTRY_KEYS if k not in table]
    if missing:
        raise _problem(path, i, f"missing {', '.join(missing)}: every quarantined test needs an id, a reason, an "
                                "owner who fixes it, and an expires date (e.g. expires = 2026-12-31).")
    for key in ("id", "reason", "owner"):
        if not isinstance(table[key], str) or not table[key].strip():
            raise _problem(path, i, f"{key} must be a non-empty string, got {table[key]!r}.")
    expires = table["expires"]
    if isinstance(expires, dt.datetime):
        expires = expires.date()
    elif isinstance(expires, str):
        try:
            expires = dt.date.fromisoformat(expires)
        except ValueError:
            raise _problem(path, i, f"expires = {expires!r} is not a date; write expires = 2026-12-31.") from None
    if not isinstance(expires, dt.date):
        raise _problem(path, i, f"expires must be a date (expires = 2026-12-31), got {expires!r}.")
    return QuarantineEntry(table["id"].strip(), table["reason"].strip(), table["owner"].strip(), expires)


def load_quarantine(path: Path) -> Quarantine:
    """Read the quarantine file; an empty quarantine when it does not exist."""
    if not path.is_file():
        return Quarantine(path)
    return parse_quarantine(path.read_text(encoding="utf-8"), path)


def entry_snippet(nodeid: str, reason: str, *, today: dt.date, days: int = 14) -> str:
    """A [[test]] entry to paste into the quarantine file."""
    expires = today + dt.timedelta(days=days)
    return (f'[[test]]\nid = "{nodeid}"\nreason = "{reason}"\nowner = "FILL IN"\n'
            f"expires = {expires.isoformat()}\n")
