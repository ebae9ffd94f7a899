"""testbed: real, isolated, fast integration tests without Docker.

``testbed.postgres()``, ``testbed.mysql()``, ``testbed.redis()``, ``testbed.nats()``, ``testbed.rabbitmq()``
(and every engine in the registry) run a real server for a ``with`` block and yield a
:class:`~testbed.provision.Service`; subpackages (``testbed.stubs``, ``testbed.events``, ...) load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from testbed.errors import TestbedError

if TYPE_CHECKING:
    from testbed.concurrency import concurrently
    from testbed.isolation.interleave import interleave
    from testbed.provision import postgres
    from testbed.report.queries import assert_max_queries

__all__ = ["TestbedError", "assert_max_queries", "concurrently", "interleave", "postgres"]
__version__ = "0.1.0"

_SUBPACKAGES = ("config", "engines", "errors", "events", "factories", "isolation", "observe", "provision", "report",
                "runners", "schema", "services", "stubs", "cli", "concurrency")
# Functions of the facade, by the module that defines them.
_FUNCTIONS = {"concurrently": "testbed.concurrency", "interleave": "testbed.isolation.interleave",
              "assert_max_queries": "testbed.report.queries"}


def __getattr__(name: str) -> Any:
    # PEP 562: import on first use, so `import testbed` (and the pytest plugin) stays cheap.
    if name == "postgres":
        from testbed.provision import postgres

        return postgres
    if name in _FUNCTIONS:
        return getattr(importlib.import_module(_FUNCTIONS[name]), name)
    if name in _SUBPACKAGES:
        return importlib.import_module(f"testbed.{name}")
    from testbed import engines

    if name in engines.names():
        from functools import partial

        from testbed.provision import service

        return partial(service, name)
    raise AttributeError(f"module 'testbed' has no attribute {name!r}")
