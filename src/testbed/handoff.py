"""The ``[tool.testbed.env]`` template language: environment variables rendered over the services' values.

``DATABASE_URL = "{postgres.sqlalchemy_url}"`` names a key of one service's view (``{<service>.<key>}``).
The pytest plugin renders the table for each xdist worker before conftest files are imported
(``testbed.plugin.env``); while the migrated template is built, the variables that name the migrating
engine are rendered over the template database instead (:func:`app_environment`), so a migration that
reads the application's settings (an Alembic ``env.py`` that imports them) migrates the template.
"""

from __future__ import annotations

import contextlib
import os
import string
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from testbed.errors import ConfigError


def templates(table: Mapping[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """``{VAR: [(engine, key), ...]}`` of every placeholder; a malformed template is a ConfigError."""
    found: dict[str, list[tuple[str, str]]] = {}
    for var, template in table.items():
        if not isinstance(template, str):
            raise ConfigError(f"[tool.testbed.env] {var} must be a string template, got {template!r}.")
        refs = []
        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as exc:
            raise ConfigError(
                f"[tool.testbed.env] {var} = {template!r}: {exc} (use {{{{ and }}}} for braces).") from None
        for _text, field, _spec, _conv in parsed:
            if field is None:
                continue
            engine, dot, key = field.partition(".")
            if not dot or not key:
                raise ConfigError(f"[tool.testbed.env] {var} = {template!r}: placeholder {{{field}}} must be "
                                  "{<service>.<key>}, e.g. {postgres.url}.")
            refs.append((engine, key))
        found[var] = refs
    return found


def render(table: Mapping[str, str], views: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """The values of ``table``'s templates over ``views`` (``{engine: {key: value}}``)."""
    out = {}
    for var, template in table.items():
        def lookup(field: str, var: str = var) -> str:
            engine, _, key = field.partition(".")
            view = views[engine]
            if key not in view:
                raise ConfigError(f"[tool.testbed.env] {var}: {{{field}}} is not known; {engine} offers: "
                                  f"{', '.join(sorted(view))}.")
            return view[key]

        parts = []
        for text, field, _spec, _conv in string.Formatter().parse(template):
            parts.append(text)
            if field is not None:
                parts.append(lookup(field))
        out[var] = "".join(parts)
    return out


def app_environment(root: Path, engine: str, view: Mapping[str, str]) -> dict[str, str]:
    """The project's hand-off variables that name only ``engine``, rendered over ``view`` (the database being
    migrated); {} for a project without [tool.testbed.env]. Variables naming other services are left out."""
    from testbed.config import read_table

    table = read_table(root)[1].get("env")
    if not isinstance(table, Mapping) or not table:
        return {}
    own = {var: table[var] for var, refs in templates(table).items()
           if refs and all(name == engine for name, _ in refs)}
    return render(own, {engine: view})


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` set in ``os.environ`` for the block (what was there before comes back afterwards)."""
    saved = {var: os.environ.get(var) for var in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
