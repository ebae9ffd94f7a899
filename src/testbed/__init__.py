"""testbed: real, isolated, fast integration tests without Docker."""

from __future__ import annotations

from testbed.errors import TestbedError

__all__ = ["TestbedError"]
__version__ = "0.1.0"
