"""Moved to :mod:`testbed.engines` (kept for one release): ``testbed.services.redis`` and friends load on
first use, so ``import testbed; testbed.services.redis.running()`` works as before."""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = ("postgres", "mysql", "redis", "nats", "rabbitmq", "kafka", "discovery", "rabbitmq_inventory",
            "pika_threads")


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(f"testbed.services.{name}")
    raise AttributeError(f"module 'testbed.services' has no attribute {name!r}")
