"""What every SQL engine's isolation shares: the per-worker database name and a running test's state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def worker_db_name(worker_id: str, prefix: str = "testbed") -> str:
    """``testbed_gw0`` under pytest-xdist, ``testbed_main`` otherwise."""
    safe = "".join(ch if ch.isalnum() else "_" for ch in worker_id.lower())
    return f"{prefix}_{safe}"


@dataclass
class BaseTestContext:
    """The database state of one running test: which strategy, which database, which connection."""

    __test__ = False
    name: str
    strategy: str
    dbname: str
    url: str
    connection: Any
    leak_check: bool
