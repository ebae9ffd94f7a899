"""``migrations = "django"``: the project's Django migrations, run once into the cached template.

The content hash covers every installed app's migration files and the settings that shape the schema
(INSTALLED_APPS, AUTH_USER_MODEL, DEFAULT_AUTO_FIELD, MIGRATION_MODULES, DATABASE_ROUTERS, the database
engines, Django's version), so a changed migration rebuilds the template by itself. Django must be
configured (pytest-django does it, from DJANGO_SETTINGS_MODULE or ``--ds``) before the template is built.

Each database alias that uses the engine gets its own template (``migrate --database=<alias>`` applies only
what the routers send there): ``testbed_template`` for ``default``, ``testbed_template__<alias>`` for the
others.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from testbed.errors import ConfigError, MigrationError

ENGINES = {"postgres": ("postgresql", "postgis"), "mysql": ("mysql",)}

# How to lift a database-access guard while testbed migrates (pytest-django blocks access outside tests;
# its plugin glue sets this). A function returning a context manager.
access_allowed: Callable[[], AbstractContextManager[Any]] = nullcontext


def template_name(alias: str, default_template: str) -> str:
    """The template database of a Django alias (``default`` keeps the engine's own template)."""
    return default_template if alias == "default" else f"{default_template}__{alias}"


def django_settings() -> Any:
    try:
        import django
        from django.conf import settings
    except ImportError:
        raise ConfigError("migrations = 'django' needs Django installed (and pytest-django to configure it).") \
            from None
    if not settings.configured:
        raise ConfigError(
            "migrations = 'django': Django is not configured. Set DJANGO_SETTINGS_MODULE (or pytest-django's "
            "--ds / DJANGO_SETTINGS_MODULE ini option) so testbed can run the project's migrations."
        )
    from django.apps import apps

    if not apps.ready:
        django.setup()
    return settings


def aliases_for(engine: str) -> list[str]:
    """The database aliases whose ENGINE is ``engine`` (mirrors excluded), ``default`` first."""
    settings = django_settings()
    found = []
    for alias, config in settings.DATABASES.items():
        backend = str(config.get("ENGINE", ""))
        if any(f".{name}" in backend for name in ENGINES.get(engine, ())) and not (config.get("TEST") or {}).get(
            "MIRROR"
        ):
            found.append(alias)
    return sorted(found, key=lambda a: (a != "default", a))


class DjangoMigrations:
    """The Django project's migrations, for one testbed engine (every alias that uses it)."""

    def __init__(self, engine: str) -> None:
        self.engine = engine

    @property
    def description(self) -> str:
        return f"Django migrations ({', '.join(aliases_for(self.engine)) or 'no alias'})"

    def content_hash(self) -> str:
        import django
        from django.apps import apps

        settings = django_settings()
        h = hashlib.sha256(b"django\0" + django.get_version().encode())
        for key in ("INSTALLED_APPS", "AUTH_USER_MODEL", "DEFAULT_AUTO_FIELD", "MIGRATION_MODULES",
                    "DATABASE_ROUTERS"):
            h.update(f"{key}={getattr(settings, key, None)!r}\0".encode())
        for alias in aliases_for(self.engine):
            h.update(f"alias={alias}:{settings.DATABASES[alias].get('ENGINE')}\0".encode())
        for app in apps.get_app_configs():
            folder = Path(app.path) / "migrations"
            if not folder.is_dir():
                continue
            for f in sorted(folder.rglob("*.py")):
                h.update(f"{app.label}/{f.relative_to(folder).as_posix()}\0".encode() + f.read_bytes() + b"\0")
        return h.hexdigest()

    def apply(self, url: str, conninfo: dict[str, Any]) -> None:
        """Migrate the ``default`` alias (or the first) into the database ``conninfo`` names."""
        aliases = aliases_for(self.engine)
        if not aliases:
            raise ConfigError(
                f"migrations = 'django' under [tool.testbed.{self.engine}], but no alias in DATABASES uses that "
                "engine; point DATABASES['default']['ENGINE'] at it."
            )
        migrate(aliases[0], conninfo)

    def extra_aliases(self) -> list[str]:
        """Aliases besides the first, each migrated into a template of its own."""
        return aliases_for(self.engine)[1:]


@contextmanager
def pointed_at(alias: str, conninfo: dict[str, Any]) -> Iterator[None]:
    """Django's ``alias`` connects to the database ``conninfo`` names while the block runs."""
    from django.db import connections

    settings = django_settings()
    config = settings.DATABASES[alias]
    saved = {key: config.get(key) for key in ("NAME", "HOST", "PORT", "USER", "PASSWORD")}
    connections[alias].close()
    config.update(NAME=conninfo["dbname"], HOST=str(conninfo.get("host", "")), PORT=str(conninfo.get("port", "")),
                  USER=str(conninfo.get("user", "")), PASSWORD=str(conninfo.get("password", "")))
    try:
        yield
    finally:
        connections[alias].close()
        config.update(saved)


def migrate(alias: str, conninfo: dict[str, Any]) -> None:
    """``manage.py migrate --database=<alias>`` into the database ``conninfo`` names."""
    from django.core.management import call_command

    with access_allowed(), pointed_at(alias, conninfo):
        try:
            call_command("migrate", database=alias, interactive=False, verbosity=0, run_syncdb=True)
        except Exception as exc:
            raise MigrationError(f"Django migrate --database={alias} failed: {type(exc).__name__}: {exc}",
                                 boundary="django migrations") from exc
