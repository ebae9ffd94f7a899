"""Moved to :mod:`testbed.engines.redis` (kept for one release)."""

from __future__ import annotations

from testbed.config import ServiceSettings
from testbed.engines.redis import (
    DATABASES,
    ENGINE,
    SPEC,
    TUNED,
    RedisEndpoint,
    RedisServer,
    running,
    worker_database,
)
from testbed.runners.binaries import Candidate


def discover(settings: ServiceSettings) -> list[Candidate]:
    """Every redis-server binary found, in discovery order (config, PATH, system, pip)."""
    return ENGINE.discover(settings)


def choose_binary(settings: ServiceSettings) -> Candidate:
    """The first redis-server of the pinned version; a clear error when there is none."""
    return ENGINE.choose_binary(settings)


__all__ = ["DATABASES", "SPEC", "TUNED", "RedisEndpoint", "RedisServer", "choose_binary", "discover", "running",
           "worker_database"]
