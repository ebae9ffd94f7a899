"""Durations files: pytest-split's format, merged across CI shards; the book keeps shared costs apart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testbed.errors import ConfigError
from testbed.hygiene.durations import DurationBook, merge_durations, read_durations, write_durations


def test_merge_latest_wins_and_prune_drops_tests_nobody_measured() -> None:
    base = {"a": 1.0, "b": 2.0, "gone": 3.0}
    shard1, shard2 = {"a": 1.5}, {"b": 2.5, "new": 0.1}
    assert merge_durations(base, [shard1, shard2]) == {"a": 1.5, "b": 2.5, "gone": 3.0, "new": 0.1}
    assert merge_durations(base, [shard1, shard2], prune=True) == {"a": 1.5, "b": 2.5, "new": 0.1}
    assert merge_durations(base, [{"a": 9.0}, {"a": 1.0}])["a"] == 1.0


def test_file_round_trip_in_pytest_split_format(tmp_path: Path) -> None:
    path = tmp_path / ".test_durations"
    write_durations(path, {"t.py::b": 2.0, "t.py::a": 1.0})
    assert list(json.loads(path.read_text())) == ["t.py::a", "t.py::b"]  # sorted, like pytest-split writes it
    assert read_durations(path) == {"t.py::a": 1.0, "t.py::b": 2.0}
    path.write_text('[["t.py::a", 1.5]]')  # pytest-split's old list format
    assert read_durations(path) == {"t.py::a": 1.5}
    assert read_durations(tmp_path / "missing") == {}
    path.write_text("not json")
    with pytest.raises(ConfigError, match="not a durations file"):
        read_durations(path)


def test_book_keeps_shared_fixture_costs_out_of_the_tests() -> None:
    book = DurationBook()
    book.add_phase("t.py::a", "setup", 0.01)
    book.add_phase("t.py::a", "call", 0.2)
    book.add_phase("t.py::a", "teardown", -0.001)  # rounding: never negative
    book.add_scope("session", "postgres (setup)", 1.5)
    book.add_scope("t.py", "schema (setup)", 0.4)
    book.add_scope("t.py", "schema (teardown)", 0.1)
    assert book.file_entries() == {"t.py::a": pytest.approx(0.21), "t.py": pytest.approx(0.4)}
    lines = book.slowest(5)
    assert "t.py::a" in lines[1]
    assert any("session: postgres (setup) 1.500s" in line for line in lines)
