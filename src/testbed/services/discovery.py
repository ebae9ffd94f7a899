"""Moved to :mod:`testbed.runners.discovery` (kept for one release)."""

from testbed.runners.discovery import *  # noqa: F401,F403
from testbed.runners.discovery import ALL_SOURCES, BinarySpec, binary_sources, choose, discover, ensure_runnable

__all__ = ["ALL_SOURCES", "BinarySpec", "binary_sources", "choose", "discover", "ensure_runnable"]
