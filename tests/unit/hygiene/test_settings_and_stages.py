"""[tool.testbed.hygiene] and which stage a test is in."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.errors import ConfigError
from testbed.hygiene.settings import HygieneSettings, parse_hygiene
from testbed.hygiene.stages import classify, how_to_move, path_matches


def test_defaults_and_overrides() -> None:
    s = parse_hygiene({"unit_paths": ["src/tests/unit/"], "shards": 8, "default_stage": "unit"}, Path("/p"))
    assert s.unit_paths == ("src/tests/unit",)
    assert s.integration_markers == ("integration",)
    assert s.durations_path == Path("/p/.test_durations")
    assert (s.shards, s.default_stage) == (8, "unit")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"unit_path": ["x"]}, "Did you mean 'unit_paths'"),
        ({"unit_paths": "tests/unit"}, "must be a list of strings"),
        ({"default_stage": "e2e"}, "is not one of: unit, integration"),
        ({"shards": 0}, "from 1 to 256"),
        ({"shards": True}, "from 1 to 256"),
        ({"quarantine": ""}, "must be a path"),
    ],
)
def test_bad_values_say_what_is_valid(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_hygiene(table, Path("."))


def test_path_patterns() -> None:
    assert path_matches("tests/unit/test_a.py", "tests/unit")
    assert path_matches("tests/unit/sub/test_a.py", "tests/unit/")
    assert not path_matches("tests/unittest_a.py", "tests/unit")
    assert path_matches("pkg/a/tests/unit/test_x.py", "pkg/*/tests/unit")
    assert path_matches("tests/test_fast_x.py", "tests/test_fast_*.py")


def test_markers_beat_paths_and_the_closest_marker_wins() -> None:
    s = HygieneSettings()
    assert classify("tests/unit/test_a.py", [], s).name == "unit"
    assert classify("tests/unit/test_a.py", ["integration"], s).name == "integration"
    assert classify("tests/integration/test_a.py", ["unit", "integration"], s).name == "unit"
    assert classify("tests/test_misc.py", [], s).name == "integration"
    assert classify("tests/test_misc.py", [], HygieneSettings(default_stage="unit")).guarded
    assert "unit_paths" in classify("tests/unit/test_a.py", [], s).reason
    assert how_to_move(s) == ("Move it to the integration stage: move the file under tests/integration/, or mark the "
                              "test @pytest.mark.integration.")
