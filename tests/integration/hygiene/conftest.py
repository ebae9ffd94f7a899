from __future__ import annotations

import textwrap

import pytest

from testbed.runners.workspace import cache_root


@pytest.fixture(autouse=True)
def shared_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """pytester points HOME at a fresh folder; keep using the real cache (server binaries, templates)."""
    monkeypatch.setenv("TESTBED_CACHE_DIR", str(cache_root()))


@pytest.fixture
def two_stage(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project laid out in two stages: tests/unit and tests/integration."""
    (pytester.path / "tests" / "unit").mkdir(parents=True)
    (pytester.path / "tests" / "integration").mkdir(parents=True)
    pytester.makefile(".toml", pyproject=textwrap.dedent("""
        [tool.testbed.postgres]
        isolation = "rollback"
    """))
    return pytester
