"""The [tool.testbed.hygiene] table of pyproject.toml, typed and validated.

```toml
[tool.testbed.hygiene]
unit_paths = ["tests/unit"]                # tests under these paths (or globs) are in the unit stage
unit_markers = ["unit"]                    # ... and tests with one of these markers
integration_paths = ["tests/integration"]
integration_markers = ["integration"]
default_stage = "integration"              # the stage of a test that none of the above names
quarantine = "testbed-quarantine.toml"
durations = ".test_durations"              # pytest-split's format
shards = 4                                 # what `testbed ci` writes for stage 2
```
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testbed.errors import ConfigError

STAGES = ("unit", "integration")
WHERE = "[tool.testbed.hygiene]"


@dataclass(frozen=True)
class HygieneSettings:
    """How a project's tests are split into stages, and where hygiene keeps its files."""

    root: Path = Path(".")
    unit_paths: tuple[str, ...] = ("tests/unit",)
    unit_markers: tuple[str, ...] = ("unit",)
    integration_paths: tuple[str, ...] = ("tests/integration",)
    integration_markers: tuple[str, ...] = ("integration",)
    default_stage: str = "integration"
    quarantine: str = "testbed-quarantine.toml"
    durations: str = ".test_durations"
    shards: int = 4

    def resolve(self, path: str) -> Path:
        """A path from the table, relative to the project root."""
        p = Path(path)
        return p if p.is_absolute() else self.root / p

    @property
    def quarantine_path(self) -> Path:
        return self.resolve(self.quarantine)

    @property
    def durations_path(self) -> Path:
        return self.resolve(self.durations)


_LISTS = ("unit_paths", "unit_markers", "integration_paths", "integration_markers")
_STRINGS = ("quarantine", "durations")
KEYS = frozenset({*_LISTS, *_STRINGS, "default_stage", "shards"})


def _unknown_key(key: str) -> str:
    close = difflib.get_close_matches(key, sorted(KEYS), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"unknown key {key!r} in {WHERE}.{hint} Valid: {', '.join(sorted(KEYS))}."


def parse_hygiene(table: Mapping[str, Any], root: Path) -> HygieneSettings:
    """Validate a [tool.testbed.hygiene] table (already parsed from TOML)."""
    kw: dict[str, Any] = {"root": root}
    for key, value in table.items():
        if key not in KEYS:
            raise ConfigError(_unknown_key(key))
        if key in _LISTS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{WHERE} {key} must be a list of strings, got {value!r}.")
            kw[key] = tuple(v.rstrip("/") for v in value)
        elif key in _STRINGS:
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{WHERE} {key} must be a path (a non-empty string), got {value!r}.")
            kw[key] = value
        elif key == "default_stage":
            if value not in STAGES:
                raise ConfigError(f"{WHERE} default_stage = {value!r} is not one of: {', '.join(STAGES)}.")
            kw[key] = value
        elif key == "shards":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 256:
                raise ConfigError(f"{WHERE} shards must be a whole number from 1 to 256, got {value!r}.")
            kw[key] = value
    return HygieneSettings(**kw)


def load_hygiene(start: Path) -> HygieneSettings:
    """Read [tool.testbed.hygiene] from the nearest pyproject.toml at or above ``start`` (defaults when absent).

    Paths in it are relative to that file's folder, as for the rest of [tool.testbed].
    """
    pyproject = next((d / "pyproject.toml" for d in (start, *start.parents) if (d / "pyproject.toml").is_file()),
                     None)
    root = pyproject.parent if pyproject is not None else start
    table: Mapping[str, Any] = {}
    if pyproject is not None:
        from testbed.config import parse_pyproject

        table = parse_pyproject(pyproject).get("tool", {}).get("testbed", {}).get("hygiene", {})
        if not isinstance(table, dict):
            raise ConfigError(f"{WHERE} in {pyproject} must be a table.")
    return parse_hygiene(table, root)
