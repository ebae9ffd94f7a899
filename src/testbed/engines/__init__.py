"""The engine registry: which engines testbed can run, built in or added by other packages.

An engine is a module defining an :class:`~testbed.engines.base.Engine` (its settings, binary, how a
server of it starts and becomes ready, its endpoint, its per-test and per-worker reset). Built-in engines
are listed here; a third-party package adds one through the ``testbed.engines`` entry point group::

    [project.entry-points."testbed.engines"]
    kafka = "my_package.kafka_engine:ENGINE"

Config keys, ``testbed up``/``doctor``, the xdist hand-off and the fixtures all derive from this
registry; no other module lists engine names. Engine modules are imported only when asked for.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from functools import cache
from typing import TYPE_CHECKING

from testbed.errors import ConfigError

if TYPE_CHECKING:
    from testbed.engines.base import Engine

BUILT_IN = {
    "postgres": "testbed.engines.postgres:ENGINE",
    "mysql": "testbed.engines.mysql:ENGINE",
    "redis": "testbed.engines.redis:ENGINE",
    "nats": "testbed.engines.nats:ENGINE",
    "rabbitmq": "testbed.engines.rabbitmq:ENGINE",
    "s3": "testbed.engines.s3:ENGINE",
}
ENTRY_POINT_GROUP = "testbed.engines"


@cache
def _targets() -> dict[str, str]:
    found = dict(BUILT_IN)
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)  # a built-in name cannot be taken over
    return found


def names() -> tuple[str, ...]:
    """Every engine's name, built-in ones first."""
    return tuple(_targets())


@cache
def get(name: str) -> Engine:
    """The engine called ``name`` (imports its module)."""
    target = _targets().get(name)
    if target is None:
        import difflib

        close = difflib.get_close_matches(name, names(), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown engine {name!r}.{hint} Valid: {', '.join(names())}.")
    module_name, _, attr = target.partition(":")
    try:
        engine: Engine = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"engine {name!r} ({target}) could not be loaded: {exc}") from exc
    return engine


def all_engines() -> list[Engine]:
    """Every registered engine (imports them all: for `testbed doctor` and the docs)."""
    return [get(n) for n in names()]
