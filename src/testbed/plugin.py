"""pytest glue: options, markers and fixtures that call testbed's library layers. Nothing else."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "testbed(isolation=..., leak_check=..., reason=...): per-test testbed options",
    )
