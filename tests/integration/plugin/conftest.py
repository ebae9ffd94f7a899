from __future__ import annotations

import pytest

from testbed.runners.workspace import cache_root


@pytest.fixture(autouse=True)
def shared_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """pytester points HOME at a fresh folder; keep using the real cache (RabbitMQ's first boot is slow)."""
    monkeypatch.setenv("TESTBED_CACHE_DIR", str(cache_root()))
