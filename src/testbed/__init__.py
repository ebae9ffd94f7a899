"""testbed: real, isolated, fast integration tests without Docker."""

from __future__ import annotations

from testbed.errors import TestbedError
from testbed.provision import postgres

__all__ = ["TestbedError", "postgres"]
__version__ = "0.1.0"
