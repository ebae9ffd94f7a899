"""Which stage a test belongs to: unit (no I/O, guarded) or integration (real servers).

A marker beats a path (it is the more specific statement), the marker closest to the test wins, and a
test that neither names gets ``default_stage``. The answer carries its reason, because the guard's
error message has to tell the user why a test counts as a unit test before asking them to move it.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import NamedTuple

from testbed.hygiene.settings import HygieneSettings


class Stage(NamedTuple):
    """A test's stage and why (a named tuple: every run classifies its tests, and a dataclass costs more to
    build than the classification of a small suite)."""

    name: str  # "unit" or "integration"
    reason: str  # e.g. "its path is under tests/unit ([tool.testbed.hygiene] unit_paths)"

    @property
    def guarded(self) -> bool:
        return self.name == "unit"


def path_matches(relpath: str, pattern: str) -> bool:
    """``tests/unit`` matches the folder and everything below it; globs (``tests/*/unit``) work too."""
    pattern = pattern.strip("/") or "."
    if pattern == ".":
        return True
    if relpath == pattern or relpath.startswith(pattern + "/"):
        return True
    return fnmatchcase(relpath, pattern) or fnmatchcase(relpath, pattern + "/*")


def classify(relpath: str, markers: Iterable[str], settings: HygieneSettings) -> Stage:
    """The stage of a test in file ``relpath`` (posix, relative to the root) with ``markers`` (closest first)."""
    for marker in markers:
        if marker in settings.unit_markers:
            return Stage("unit", f"it is marked @pytest.mark.{marker} ([tool.testbed.hygiene] unit_markers)")
        if marker in settings.integration_markers:
            return Stage("integration", f"it is marked @pytest.mark.{marker}")
    for pattern in settings.unit_paths:
        if path_matches(relpath, pattern):
            return Stage("unit", f"its path is under {pattern} ([tool.testbed.hygiene] unit_paths)")
    for pattern in settings.integration_paths:
        if path_matches(relpath, pattern):
            return Stage("integration", f"its path is under {pattern}")
    if settings.default_stage == "unit":
        return Stage("unit", "no path or marker names its stage and [tool.testbed.hygiene] default_stage = 'unit'")
    return Stage("integration", "no path or marker names its stage (default_stage)")


def how_to_move(settings: HygieneSettings) -> str:
    """One sentence: how a unit test becomes an integration test in this project."""
    ways = []
    if settings.integration_paths:
        ways.append(f"move the file under {settings.integration_paths[0]}/")
    if settings.integration_markers:
        ways.append(f"mark the test @pytest.mark.{settings.integration_markers[0]}")
    if not ways:
        ways.append("add it to [tool.testbed.hygiene] integration_paths or integration_markers")
    return "Move it to the integration stage: " + ", or ".join(ways) + "."
