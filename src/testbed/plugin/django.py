"""pytest-django on testbed's databases: ``migrations = "django"`` in [tool.testbed.postgres] (or .mysql).

testbed then supplies the test databases instead of pytest-django: the project's migrations run once into
the cached template (rebuilt when a migration or a schema-shaping setting changes), each xdist worker gets a
clone per database alias, and ``settings.DATABASES`` points at it. pytest-django's markers keep their
meaning on top: ``@pytest.mark.django_db`` is Django's rolled-back transaction (on_commit callbacks behave
as in Django's TestCase), ``transaction=True`` truncates only the tables the test wrote and restores the rows
migrations seeded (instead of Django's flush of every table), ``serialized_rollback`` gets the template's
state back, several aliases (``databases=[...]``) work. ``--reuse-db`` / ``--create-db`` are not needed and
do nothing here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from testbed.plugin.session import settings, worker_id

_aliases_key = pytest.StashKey[dict[tuple[str, str], Any]]()


def managed_engines(config: pytest.Config) -> list[str]:
    """The SQL engines whose [tool.testbed.<engine>] says migrations = "django"."""
    return [name for name, s in settings(config).engines.items() if getattr(s, "migrations", None) == "django"]


def django_active(config: pytest.Config) -> bool:
    """pytest-django is loaded and Django is configured for this run."""
    if not config.pluginmanager.hasplugin("django"):
        return False
    try:
        from django.conf import settings as django_settings
    except ImportError:
        return False
    return bool(django_settings.configured)


def alias_database(config: pytest.Config, engine: str, alias: str) -> Any:
    """This worker's database of one Django alias (the engine's worker database for ``default``)."""
    from testbed import engines
    from testbed.plugin.session import services
    from testbed.plugin.sql import worker_database
    from testbed.schema.django import template_name

    first = _aliases(engine)[0] if _aliases(engine) else "default"
    if alias == first:
        return worker_database(config, engine)  # the same database as the engine's other fixtures
    made = config.stash.setdefault(_aliases_key, {})
    if (engine, alias) not in made:
        endpoint: Any = services(config).worker_endpoint(engine)
        own = dataclasses.replace(endpoint, template=template_name(alias, endpoint.template),
                                  db_prefix=f"{endpoint.db_prefix}__{alias}")
        made[(engine, alias)] = engines.get(engine).worker_database(  # type: ignore[attr-defined]
            own, worker_id(config) or "main", settings(config).service(engine))
    return made[(engine, alias)]


def _aliases(engine: str) -> list[str]:
    from testbed.schema.django import aliases_for

    return aliases_for(engine)


def _point(alias: str, endpoint: Any, dbname: str) -> None:
    from django.conf import settings as django_settings
    from django.db import connections

    config = django_settings.DATABASES[alias]
    connections[alias].close()
    user = getattr(endpoint, "user", "root")
    config.update(NAME=dbname, HOST=endpoint.host, PORT=str(endpoint.port), USER=user,
                  PASSWORD=getattr(endpoint, "password", ""))
    config.setdefault("TEST", {})["NAME"] = dbname


def _truncate_written_tables(self: Any) -> None:
    """TransactionTestCase teardown on testbed's databases: only the written tables, seeds restored."""
    from django.db import connections

    for name in self._databases_names(include_mirrors=False):
        connection = connections[name]
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = '5s'")
                cursor.execute("SELECT testbed.reset()")
        else:
            _FLUSH[0](self)  # MariaDB/MySQL: Django's own flush
            return


_FLUSH: list[Any] = []


def _django_db_setup(request: pytest.FixtureRequest, django_test_environment: None,
                     django_db_blocker: Any) -> Iterator[None]:
    """Test databases from testbed: clones of the migrated template, one per alias and xdist worker."""
    import django.test
    from pytest_django.fixtures import _get_databases_for_setup

    config = request.config
    wanted, _serialized = _get_databases_for_setup(request.session.items)
    with django_db_blocker.unblock():
        for engine in managed_engines(config):
            for alias in _aliases(engine):
                if alias not in wanted:
                    continue
                database = alias_database(config, engine, alias)
                _point(alias, database.endpoint, database.dbname)
    original = django.test.TransactionTestCase._fixture_teardown
    _FLUSH[:] = [original]
    django.test.TransactionTestCase._fixture_teardown = _truncate_written_tables
    try:
        yield
    finally:
        django.test.TransactionTestCase._fixture_teardown = original
        from django.db import connections

        with django_db_blocker.unblock():
            connections.close_all()


def _plugin() -> ModuleType:
    module = ModuleType("testbed.plugin.django.databases", "testbed supplies pytest-django's test databases")
    fixture = pytest.fixture(scope="session", name="django_db_setup")(_django_db_setup)
    module.django_db_setup = fixture  # type: ignore[attr-defined]
    return module


@pytest.hookimpl(trylast=True)  # after pytest-django has configured Django
def pytest_configure(config: pytest.Config) -> None:
    if not django_active(config) or not managed_engines(config):
        return
    from pytest_django.plugin import blocking_manager_key

    from testbed.schema import django as django_schema

    # Building the template runs `migrate` wherever the server starts (the xdist controller, too), where
    # pytest-django blocks database access outside tests.
    django_schema.access_allowed = config.stash[blocking_manager_key].unblock
    if not config.pluginmanager.has_plugin("testbed-django-databases"):
        # Registered after pytest-django, so this django_db_setup is the one its fixtures use.
        config.pluginmanager.register(_plugin(), "testbed-django-databases")


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    if config.pluginmanager.has_plugin("testbed-django-databases"):
        return ["testbed: Django's test databases are clones of testbed's migrated template "
                f"({', '.join(managed_engines(config))}; one per alias and xdist worker)"]
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    for database in config.stash.get(_aliases_key, {}).values():
        database.close()
    config.stash[_aliases_key] = {}
