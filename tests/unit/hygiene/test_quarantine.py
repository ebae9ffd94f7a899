"""The quarantine file: validated, with the owner and an expiry on every entry."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from testbed.errors import ConfigError
from testbed.hygiene.quarantine import entry_snippet, parse_quarantine

PATH = Path("testbed-quarantine.toml")
GOOD = """
[[test]]
id = "tests/test_pay.py::test_webhook"
reason = "races with the webhook thread (#123)"
owner = "sam@example.com"
expires = 2026-12-31

[[test]]
id = "tests/test_pay.py"
reason = "whole module flaky"
owner = "kim"
expires = "2026-01-15"
"""


def test_entries_and_what_they_cover() -> None:
    q = parse_quarantine(GOOD, PATH)
    assert [e.id for e in q.entries] == ["tests/test_pay.py::test_webhook", "tests/test_pay.py"]
    assert q.entries[1].expires == dt.date(2026, 1, 15)
    assert q.entry_for("tests/test_pay.py::test_webhook").owner == "sam@example.com"  # the closest entry wins
    assert q.entry_for("tests/test_pay.py::test_webhook[visa]").owner == "sam@example.com"
    assert q.entry_for("tests/test_pay.py::TestRefunds::test_one").owner == "kim"
    assert q.entry_for("tests/test_pay.py::test_webhooks") .owner == "kim"  # not sam's: another test
    assert q.entry_for("tests/test_payroll.py::test_x") is None


def test_expiry() -> None:
    q = parse_quarantine(GOOD, PATH)
    assert [e.owner for e in q.expired(dt.date(2026, 6, 1))] == ["kim"]
    assert q.expired(dt.date(2026, 1, 15)) == []  # the last day still counts


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[test]]\nid = "a"\nreason = "r"\nowner = "o"\nexpire = 2026-01-01\n', "Did you mean 'expires'?"),
        ('[[test]]\nid = "a"\nreason = "r"\nexpires = 2026-01-01\n', "missing owner"),
        ('[[test]]\nid = "a"\nreason = "r"\nowner = "o"\nexpires = "next week"\n', "is not a date"),
        ('[[test]]\nid = "a"\nreason = ""\nowner = "o"\nexpires = 2026-01-01\n', "reason must be a non-empty"),
        ('[test]\nid = "a"\n', "array of tables"),
        ('tests = []\n', "unknown top-level key 'tests'"),
        ('[[test]]\nid = "a"\nreason = "r"\nowner = "o"\nexpires = 2026-01-01\n' * 2, "already quarantined"),
        ("[[test]\n", "not valid TOML"),
    ],
)
def test_bad_files_name_the_entry_and_the_fix(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("?", r"\?")):
        parse_quarantine(text, PATH)


def test_snippet_is_a_valid_entry() -> None:
    snippet = entry_snippet("tests/t.py::test_x", "flaky: passed 1 of 3", today=dt.date(2026, 3, 1))
    entry = parse_quarantine(snippet, PATH).entries[0]
    assert entry.expires == dt.date(2026, 3, 15)
    assert entry.owner == "FILL IN"
