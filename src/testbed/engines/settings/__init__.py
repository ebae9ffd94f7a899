"""The settings classes of the built-in engines, apart from their engines: validating [tool.testbed] (which
every run does before its first test) imports these small modules, not the engines with their runners. One
module per engine, loaded on first use: building a frozen dataclass costs most of a millisecond, and a run
validates only the tables it has."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from testbed.engines.settings.mysql import MysqlSettings
    from testbed.engines.settings.nats import NatsSettings
    from testbed.engines.settings.postgres import PostgresSettings
    from testbed.engines.settings.s3 import S3Settings

__all__ = ["MysqlSettings", "NatsSettings", "PostgresSettings", "S3Settings"]

_MODULES = {"PostgresSettings": "postgres", "MysqlSettings": "mysql", "NatsSettings": "nats", "S3Settings": "s3"}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
