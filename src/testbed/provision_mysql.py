"""Moved: MariaDB/MySQL without pytest is ``testbed.mysql()`` (``testbed.provision.service``); kept for one
release."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from testbed.config import ServiceSettings
from testbed.provision import Service, service


def start_mysql(settings: ServiceSettings, root: Path | None = None) -> Any:
    """Start (or attach to) the MariaDB/MySQL these settings describe; the caller stops it."""
    from testbed import engines

    return engines.get("mysql").start(settings, root or Path.cwd())


@contextlib.contextmanager
def running(settings: ServiceSettings | None = None, root: Path | None = None) -> Iterator[Service]:
    """A migrated MariaDB/MySQL server and a database copied from its template; all gone on exit."""
    from testbed.engines.mysql import MysqlSettings

    with service("mysql", root=root or Path.cwd(), settings=settings or MysqlSettings(engine="mysql")) as m:
        yield m


RunningMysql = Service
