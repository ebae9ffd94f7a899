"""testbed: real, isolated, fast integration tests without Docker."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from testbed.errors import TestbedError

if TYPE_CHECKING:
    from testbed.provision import postgres

__all__ = ["TestbedError", "postgres"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Lazy: importing any testbed module (a pytest plugin at start-up, the CLI) must not pay for psycopg
    # and SQLAlchemy until a server is asked for.
    if name == "postgres":
        from testbed.provision import postgres

        return postgres
    raise AttributeError(f"module 'testbed' has no attribute {name!r}")
