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
import os
import sys
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from testbed.errors import ConfigError

if TYPE_CHECKING:
    from testbed.config import ServiceSettings
    from testbed.engines.base import Engine


@dataclass(frozen=True)
class Entry:
    """What the plugin needs of an engine before any test asks for it: where it lives and the names of
    its fixtures. Built-in entries are declared here so that a run in which no test uses a server never
    imports an engine module (a unit test checks they agree with the engines' own attributes); a
    third-party engine's entry is read from its engine, which is imported for it."""

    target: str  # "module:ATTRIBUTE"
    label: str
    url_fixture: str | None = None
    client_fixture: str | None = None
    plugin: str | None = None
    programs: tuple[str, ...] = ()  # what its servers run (the unit-stage guard refuses to spawn them)
    settings: str = "testbed.config:ServiceSettings"  # its settings class, "module:Class" in a light module
    runners: tuple[str, ...] = ("local", "existing")


BUILT_IN = {
    "postgres": Entry("testbed.engines.postgres:ENGINE", "PostgreSQL", plugin="testbed.plugin.sql",
                      programs=("postgres", "postmaster", "initdb", "pg_ctl"),
                      settings="testbed.engines.settings.postgres:PostgresSettings"),
    "mysql": Entry("testbed.engines.mysql:ENGINE", "MariaDB/MySQL", plugin="testbed.plugin.sql",
                   programs=("mariadbd", "mysqld", "mariadb-install-db", "mysql_install_db"),
                   settings="testbed.engines.settings.mysql:MysqlSettings"),
    "redis": Entry("testbed.engines.redis:ENGINE", "Redis", "redis_url", "redis", programs=("redis-server",)),
    "nats": Entry("testbed.engines.nats:ENGINE", "NATS", "nats_url", "nats", programs=("nats-server",),
                  settings="testbed.engines.settings.nats:NatsSettings"),
    "rabbitmq": Entry("testbed.engines.rabbitmq:ENGINE", "RabbitMQ", "rabbitmq_url", "rabbitmq_connection",
                      programs=("rabbitmq-server", "epmd", "beam.smp")),
    "s3": Entry("testbed.engines.s3:ENGINE", "S3 (moto)", "s3_url", "s3", programs=("moto_server",),
                settings="testbed.engines.settings.s3:S3Settings"),
}
ENTRY_POINT_GROUP = "testbed.engines"


def _declares_engines() -> bool:
    """Whether any installed distribution declares the entry point group, by reading the entry_points.txt
    files on sys.path as text: a few file reads instead of importlib.metadata's parse of every
    distribution, which costs tens of milliseconds on every pytest start."""
    header = f"[{ENTRY_POINT_GROUP}]"
    for folder in sys.path:
        try:
            names = os.listdir(folder or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith((".dist-info", ".egg-info")):
                try:
                    with open(os.path.join(folder or ".", name, "entry_points.txt"), encoding="utf-8") as f:
                        if header in f.read():
                            return True
                except OSError:
                    continue
    return False


@cache
def _targets() -> dict[str, str]:
    found = {name: entry.target for name, entry in BUILT_IN.items()}
    if _declares_engines():
        import importlib.metadata

        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            found.setdefault(ep.name, ep.value)  # a built-in name cannot be taken over
    return found


def names() -> tuple[str, ...]:
    """Every engine's name, built-in ones first."""
    return tuple(_targets())


def entry(name: str) -> Entry:
    """The engine's registry entry, without importing a built-in engine's module."""
    if name in BUILT_IN:
        return BUILT_IN[name]
    engine = get(name)
    cls = engine.settings_class
    return Entry(_targets()[name], engine.label, engine.url_fixture, engine.client_fixture, engine.plugin,
                 tuple(engine.programs), f"{cls.__module__}:{cls.__qualname__}", tuple(engine.runners))


def settings_class(name: str) -> type[ServiceSettings]:
    """The class of engine ``name``'s settings: a built-in engine's without importing the engine."""
    if name not in BUILT_IN:
        return get(name).settings_class
    module_name, _, attr = BUILT_IN[name].settings.partition(":")
    cls: type[ServiceSettings] = getattr(importlib.import_module(module_name), attr)
    return cls


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
