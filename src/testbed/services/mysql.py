"""Moved to :mod:`testbed.engines.mysql` (kept for one release)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from testbed.config import ServiceSettings
from testbed.engines.mysql import (
    ADMIN_DB,
    BOUNDARY,
    CACHE_FORMAT,
    ENGINE,
    LAYOUT_OPTIONS,
    SUPERUSER,
    SYSTEM_GLOBS,
    TEMPLATE_DB,
    TUNED,
    ExistingMysqlServer,
    MysqlEndpoint,
    MysqlServer,
    MysqlSettings,
    ServerUrl,
    choose_binary,
    connect_kwargs,
    discover,
    flavor_of,
    install_command,
    mysql_url,
    parse_server_version,
    running_server,
    split_pin,
    sqlalchemy_url,
)


@contextlib.contextmanager
def running(settings: ServiceSettings | None = None, root: Path | None = None) -> Iterator[Any]:
    """A migrated server plus a database copied from its template (``.url``), stopped on exit."""
    from testbed.provision_mysql import running as _running

    with _running(settings, root) as m:
        yield m


__all__ = ["ADMIN_DB", "BOUNDARY", "CACHE_FORMAT", "ENGINE", "LAYOUT_OPTIONS", "SUPERUSER", "SYSTEM_GLOBS",
           "TEMPLATE_DB", "TUNED", "ExistingMysqlServer", "MysqlEndpoint", "MysqlServer", "MysqlSettings", "ServerUrl",
           "choose_binary", "connect_kwargs", "discover", "flavor_of", "install_command", "mysql_url",
           "parse_server_version", "running", "running_server", "split_pin", "sqlalchemy_url"]
