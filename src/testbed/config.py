"""Settings: the [tool.testbed] table of pyproject.toml plus TESTBED_* env vars, typed and validated.

Each engine's keys come from its own settings class (a frozen dataclass registered with the engine in
``testbed.engines``); this module only knows the keys every engine has, the families some share (SQL
engines), and how to validate a key from its field's declared kind. Every error names the key that was
wrong and the keys that are valid, so a typo never silently turns into a default.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from testbed.errors import ConfigError

ISOLATION_STRATEGIES = ("rollback", "truncate", "clone", "none")
DATA_DIR_CHOICES = ("auto", "tmpfs", "disk")
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def setting(default: Any = dataclasses.MISSING, *, kind: str, doc: str = "", minimum: float | None = None,
            maximum: float | None = None, choices: tuple[str, ...] = (), factory: Any = None) -> Any:
    """A settings field: ``kind`` is how a value from TOML or an env var is checked and converted.

    Kinds: str, version (str or number), path (relative to the project root), data_dir (a choice or a
    folder), bool, int, float, strings (list), mapping (str -> str), choice.
    """
    meta = {"kind": kind, "doc": doc, "min": minimum, "max": maximum, "choices": choices}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class ServiceSettings:
    """How one engine is provisioned for a test session: the keys every engine has.

    ``ServiceSettings(engine="postgres", migrations=...)`` builds the engine's own settings class (kept
    working for code written before engines had their own classes).
    """

    engine: str
    version: str | None = setting(None, kind="version", doc="pinned version prefix, e.g. '16' or '7.0'")
    binary: str | None = setting(None, kind="path", doc="the server executable or its folder")
    runner: str = setting("local", kind="runner", doc="'local' (a process testbed starts) or 'existing' (url)")
    url: str | None = setting(None, kind="str", doc="the server to use with runner = 'existing'")
    data_dir: str = setting("auto", kind="data_dir", doc="'auto', 'tmpfs', 'disk' or a folder")
    options: Mapping[str, str] = setting(kind="mapping", factory=dict, doc="extra server settings")
    startup_timeout: float = setting(30.0, kind="float", minimum=0.1, maximum=3600, doc="seconds to become ready")
    port: int = setting(0, kind="int", minimum=0, maximum=65535, doc="0: a free dynamic port")

    def __new__(cls, *args: Any, **kwargs: Any) -> ServiceSettings:
        if cls is ServiceSettings:
            engine = kwargs.get("engine", args[0] if args else None)
            if isinstance(engine, str):
                from testbed import engines

                if engine in engines.names():
                    target: type[ServiceSettings] = engines.settings_class(engine)
                    return object.__new__(target)
        return object.__new__(cls)


@dataclass(frozen=True)
class SqlSettings(ServiceSettings):
    """Keys of the SQL engines (PostgreSQL, MariaDB/MySQL): migrations and per-test isolation."""

    migrations: str | None = setting(None, kind="str", doc="a folder of .sql files, 'alembic', or 'pkg.mod:fn'")
    isolation: str = setting("rollback", kind="choice", choices=ISOLATION_STRATEGIES, doc="per-test isolation")
    seed_tables: tuple[str, ...] | None = setting(None, kind="strings", doc="tables reloaded after truncation")
    leak_check: bool = setting(True, kind="bool", doc="fail tests that leave connections or rows behind")
    migration_timeout: float = setting(120.0, kind="float", minimum=0.1, maximum=86400,
                                       doc="seconds a migration may take before it is cancelled")


@dataclass(frozen=True)
class HttpStubSettings:
    """The HTTP stub server's session-wide settings ([tool.testbed.http])."""

    mappings: str | None = setting(None, kind="path", doc="a WireMock root dir (mappings/, __files/)")
    https: bool = setting(False, kind="bool", doc="start the HTTPS port at session start")
    fail_on_unmatched: bool = setting(True, kind="bool", doc="a request no stub matched fails the test")
    in_process: bool = setting(True, kind="bool", doc="a thread of the test process (false: its own process)")


@dataclass(frozen=True)
class Settings:
    """Everything [tool.testbed] and the TESTBED_* env vars configure, for one project."""

    root: Path
    services: tuple[str, ...] = ()
    engines: Mapping[str, ServiceSettings] = field(default_factory=dict)
    http: HttpStubSettings = field(default_factory=HttpStubSettings)
    cache_dir: Path | None = None
    data_dir: str = "auto"
    # Keep servers between runs (runners/keeper.py): None = on unless the CI env var is set.
    reuse: bool | None = None
    reuse_idle: float = 300.0  # seconds a kept server waits for the next run before it stops
    # The per-test transcript (testbed.report): statements, exchanges, messages, server log lines.
    capture: bool = True
    n_plus_one: int = 0  # fail a test whose same statement shape runs more than this often (0: only report)
    # Tables of layers that validate their own keys (hygiene, env): kept raw here.
    tables: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def service(self, engine: str) -> ServiceSettings:
        """The settings of one engine, with defaults when its table is absent."""
        from testbed import engines

        if engine not in engines.names():
            raise ConfigError(_unknown("service", engine, engines.names(), "[tool.testbed] services"))
        found = self.engines.get(engine)
        if found is not None:
            return found
        return engines.settings_class(engine)(engine=engine, data_dir=self.data_dir)

    def reuse_servers(self, environ: Mapping[str, str] | None = None) -> bool:
        """Whether runs keep and adopt servers (reuse): never where CI is set (CI runs start fresh, whatever
        the project's config says), else as configured, else on."""
        if (environ if environ is not None else os.environ).get("CI"):
            return False
        return self.reuse if self.reuse is not None else True

    def resolve(self, path: str) -> Path:
        """A path from the config, relative to the project root."""
        p = Path(path)
        return p if p.is_absolute() else self.root / p


LAYER_TABLES = ("env", "hygiene")  # validated by the layer that reads them
SCALAR_TOP_LEVEL = ("services", "http", "cache_dir", "data_dir", "reuse", "reuse_idle", "capture", "n_plus_one")


def _unknown(kind: str, got: str, valid: Any, where: str) -> str:
    valid_sorted = sorted(valid)
    close = difflib.get_close_matches(got, valid_sorted, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"unknown {kind} {got!r} in {where}.{hint} Valid: {', '.join(valid_sorted)}."


def _type_name(value: Any) -> str:
    return type(value).__name__


def keys_of(cls: type[Any]) -> dict[str, dataclasses.Field[Any]]:
    """The configurable keys of a settings class (every field with a ``kind``)."""
    return {f.name: f for f in dataclasses.fields(cls) if "kind" in f.metadata}


def check_value(f: dataclasses.Field[Any], value: Any, key: str, *, root: Path | None = None,
                engine: str = "") -> Any:
    """Validate and convert one value (from TOML) of field ``f``; ``key`` names it in errors."""
    kind = f.metadata["kind"]
    lo, hi, choices = f.metadata.get("min"), f.metadata.get("max"), f.metadata.get("choices") or ()
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {_type_name(value)} {value!r}.")
        return value
    if kind in ("int", "float"):
        wrong_int = kind == "int" and isinstance(value, float)
        if isinstance(value, bool) or not isinstance(value, int | float) or wrong_int:
            raise ConfigError(f"{key} must be a{'n integer' if kind == 'int' else ' number'}, got "
                              f"{_type_name(value)} {value!r}.")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ConfigError(f"{key} = {value!r} is out of range: expected {lo:g} to {hi:g}.")
        return int(value) if kind == "int" else float(value)
    if kind == "version":
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ConfigError(f"{key} must be a version string such as '16', got {_type_name(value)} {value!r}.")
        return str(value)
    if kind == "strings":
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key} must be a list of strings, got {value!r}.")
        return tuple(value)
    if kind == "mapping":
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a table of key = value, got {_type_name(value)} {value!r}.")
        return {str(k): str(v) for k, v in value.items()}
    if not isinstance(value, str):
        raise ConfigError(f"{key} must be a string, got {_type_name(value)} {value!r}.")
    if kind == "choice" and value not in choices:
        close = difflib.get_close_matches(value, choices, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{key} = {value!r} is not one of: {', '.join(choices)}.{hint}")
    if kind == "runner":
        return _check_runner(value, key, engine)
    if kind == "path" and root is not None and value and not Path(value).is_absolute():
        return str(root / value)
    if kind == "data_dir":
        return check_data_dir(value, key, root)
    return value


def _check_runner(value: str, key: str, engine: str) -> str:
    from testbed import engines

    available = engines.entry(engine).runners if engine else ("local", "existing")
    if value == "docker":
        raise ConfigError(
            f"{key} = 'docker' is not available yet: testbed runs servers as local processes ('local') or uses "
            f"one you run ('existing' with url = ...). Choose one of: {', '.join(available)}."
        )
    if value not in available:
        close = difflib.get_close_matches(value, available, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{key} = {value!r} is not one of: {', '.join(available)}.{hint}")
    return value


def check_data_dir(value: str, key: str, root: Path | None) -> str:
    """'auto' / 'tmpfs' / 'disk', or an existing folder (relative to the project root)."""
    if value in DATA_DIR_CHOICES:
        return value
    path = Path(value)
    if root is not None and not path.is_absolute():
        path = root / path
    if not path.is_dir():
        close = difflib.get_close_matches(value, DATA_DIR_CHOICES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"{key} = {value!r}: not one of {', '.join(DATA_DIR_CHOICES)} and no such folder ({path}).{hint} "
            "Create the folder or choose one of the three."
        )
    return str(path)


def parse_env_value(f: dataclasses.Field[Any], raw: str, key: str) -> Any:
    """Turn an env var's text into the TOML-like value ``check_value`` expects."""
    kind = f.metadata["kind"]
    text = raw.strip()
    if kind == "bool":
        if text.lower() in TRUE_WORDS:
            return True
        if text.lower() in FALSE_WORDS:
            return False
        raise ConfigError(f"{key}={raw!r} must be one of {', '.join(TRUE_WORDS + FALSE_WORDS)}.")
    if kind in ("int", "float"):
        try:
            return int(text) if kind == "int" else float(text)
        except ValueError:
            raise ConfigError(f"{key}={raw!r} must be a{'n integer' if kind == 'int' else ' number'}.") from None
    if kind == "strings":
        return [s.strip() for s in text.split(",") if s.strip()]
    if kind == "mapping":
        pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
        if any(len(p) != 2 for p in pairs):
            raise ConfigError(f"{key}={raw!r} must be name=value pairs separated by commas.")
        return {k.strip(): v.strip() for k, v in pairs}
    return raw


def parse_table(cls: type[Any], table: Mapping[str, Any], where: str, *, root: Path | None,
                fixed: Mapping[str, Any] | None = None) -> Any:
    """Validate a TOML table against the keys of settings class ``cls`` and build it (``fixed``: more fields)."""
    fields = keys_of(cls)
    kw: dict[str, Any] = dict(fixed or {})
    for key, value in table.items():
        if key not in fields:
            raise ConfigError(_unknown("key", key, fields, where))
        kw[key] = check_value(fields[key], value, f"{where} {key}", root=root, engine=str(kw.get("engine", "")))
    return cls(**kw)


def parse_service(engine: str, table: Mapping[str, Any], *, default_data_dir: str = "auto",
                  root: Path | None = None) -> ServiceSettings:
    """Validate one [tool.testbed.<engine>] table."""
    from testbed import engines

    where = f"[tool.testbed.{engine}]"
    settings: ServiceSettings = parse_table(engines.settings_class(engine), table, where, root=root,
                                            fixed={"engine": engine, "data_dir": default_data_dir})
    if settings.runner == "existing" and not settings.url:
        raise ConfigError(f"{where} runner = 'existing' needs url = '...' (the server to use).")
    return settings


def parse_settings(table: Mapping[str, Any], root: Path) -> Settings:
    """Validate a whole [tool.testbed] table (already parsed from TOML)."""
    from testbed import engines

    valid = {*SCALAR_TOP_LEVEL, *LAYER_TABLES, *engines.names()}
    for key in table:
        if key not in valid:
            raise ConfigError(_unknown("key", key, valid, "[tool.testbed]"))
    data_dir = "auto"
    if "data_dir" in table:
        if not isinstance(table["data_dir"], str):
            raise ConfigError(f"[tool.testbed] data_dir must be a string, got {table['data_dir']!r}.")
        data_dir = check_data_dir(table["data_dir"], "[tool.testbed] data_dir", root)
    services: list[str] = []
    if "services" in table:
        if not isinstance(table["services"], list):
            raise ConfigError(f"[tool.testbed] services must be a list, got {table['services']!r}.")
        for name in table["services"]:
            if name not in engines.names():
                raise ConfigError(_unknown("service", str(name), engines.names(), "[tool.testbed] services"))
            services.append(name)
    configured: dict[str, ServiceSettings] = {}
    for engine in engines.names():
        if engine in table:
            sub = table[engine]
            if not isinstance(sub, dict):
                raise ConfigError(f"[tool.testbed.{engine}] must be a table, got {sub!r}.")
            configured[engine] = parse_service(engine, sub, default_data_dir=data_dir, root=root)
    http = HttpStubSettings()
    if "http" in table:
        if not isinstance(table["http"], dict):
            raise ConfigError(f"[tool.testbed.http] must be a table, got {table['http']!r}.")
        http = parse_table(HttpStubSettings, table["http"], "[tool.testbed.http]", root=root)
    cache_dir = None
    if "cache_dir" in table:
        if not isinstance(table["cache_dir"], str):
            raise ConfigError(f"[tool.testbed] cache_dir must be a string, got {table['cache_dir']!r}.")
        cache_dir = root / table["cache_dir"]
    reuse = table.get("reuse")
    if reuse is not None and not isinstance(reuse, bool):
        raise ConfigError(f"[tool.testbed] reuse must be true or false, got {reuse!r}.")
    reuse_idle = table.get("reuse_idle", 300.0)
    if isinstance(reuse_idle, bool) or not isinstance(reuse_idle, int | float) or not 0 < reuse_idle <= 86400:
        raise ConfigError(f"[tool.testbed] reuse_idle must be a number of seconds (0 to 86400), got {reuse_idle!r}.")
    capture = table.get("capture", True)
    if not isinstance(capture, bool):
        raise ConfigError(f"[tool.testbed] capture must be true or false, got {capture!r}.")
    n_plus_one = table.get("n_plus_one", 0)
    if isinstance(n_plus_one, bool) or not isinstance(n_plus_one, int) or n_plus_one < 0:
        raise ConfigError(f"[tool.testbed] n_plus_one must be a whole number of statements (0: off), got "
                          f"{n_plus_one!r}.")
    layers = {}
    for name in LAYER_TABLES:
        if name in table:
            if not isinstance(table[name], dict):
                raise ConfigError(f"[tool.testbed.{name}] must be a table, got {table[name]!r}.")
            layers[name] = dict(table[name])
    return Settings(root=root, services=tuple(services), engines=configured, http=http, cache_dir=cache_dir,
                    data_dir=data_dir, reuse=reuse, reuse_idle=float(reuse_idle), capture=capture,
                    n_plus_one=n_plus_one, tables=layers)


def _overlay(base: Any, cls: type[Any], overrides: Mapping[str, str], prefix: str, where: str, root: Path,
             engine: str = "") -> Any:
    fields = keys_of(cls)
    changes: dict[str, Any] = {}
    for key, raw in overrides.items():
        if key not in fields:
            raise ConfigError(_unknown("env var key", key, fields, f"{prefix}*"))
        name = f"{prefix}{key.upper()}"
        changes[key] = check_value(fields[key], parse_env_value(fields[key], raw, name), name, root=root,
                                   engine=engine)
    return replace(base, **changes)


def _env_flag(environ: Mapping[str, str], name: str, default: bool | None) -> bool | None:
    """A yes/no environment variable over a configured value (unset or empty: the configured one)."""
    if not environ.get(name):
        return default
    word = environ[name].strip().lower()
    if word not in TRUE_WORDS + FALSE_WORDS:
        raise ConfigError(f"{name}={environ[name]!r} must be one of {', '.join(TRUE_WORDS + FALSE_WORDS)}.")
    return word in TRUE_WORDS


def apply_env(settings: Settings, environ: Mapping[str, str]) -> Settings:
    """Overlay TESTBED_<ENGINE>_<KEY> env vars (e.g. TESTBED_POSTGRES_VERSION=15) on the settings."""
    from testbed import engines

    root = settings.root
    configured = dict(settings.engines)
    for engine in engines.names():
        prefix = f"TESTBED_{engine.upper()}_"
        overrides = {k[len(prefix):].lower(): v for k, v in environ.items() if k.startswith(prefix)}
        if overrides:
            base = settings.service(engine)
            configured[engine] = _overlay(base, type(base), overrides, prefix, f"[tool.testbed.{engine}]", root,
                                          engine)
            if configured[engine].runner == "existing" and not configured[engine].url:
                raise ConfigError(f"{prefix}RUNNER=existing needs {prefix}URL (the server to use).")
    services = settings.services
    if "TESTBED_SERVICES" in environ:
        services = tuple(s.strip() for s in environ["TESTBED_SERVICES"].split(",") if s.strip())
        for s in services:
            if s not in engines.names():
                raise ConfigError(_unknown("service", s, engines.names(), "TESTBED_SERVICES"))
    http_overrides = {k[len("TESTBED_HTTP_"):].lower(): v for k, v in environ.items() if k.startswith("TESTBED_HTTP_")}
    http = settings.http
    if http_overrides:
        http = _overlay(http, HttpStubSettings, http_overrides, "TESTBED_HTTP_", "[tool.testbed.http]", root)
    cache_dir = Path(environ["TESTBED_CACHE_DIR"]) if environ.get("TESTBED_CACHE_DIR") else settings.cache_dir
    data_dir = settings.data_dir
    if environ.get("TESTBED_DATA_DIR"):
        data_dir = check_data_dir(environ["TESTBED_DATA_DIR"], "TESTBED_DATA_DIR", root)
        configured = {name: s if name in settings.engines and settings.engines[name].data_dir != settings.data_dir
                      else replace(s, data_dir=data_dir) for name, s in configured.items()}
    reuse = _env_flag(environ, "TESTBED_REUSE", settings.reuse)
    capture = bool(_env_flag(environ, "TESTBED_CAPTURE", settings.capture))
    return replace(settings, engines=configured, services=services, cache_dir=cache_dir, data_dir=data_dir,
                   http=http, reuse=reuse, capture=capture)


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above ``start``."""
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


_parsed: dict[Path, tuple[tuple[int, int], Mapping[str, Any]]] = {}


def parse_pyproject(pyproject: Path) -> Mapping[str, Any]:
    """The parsed file, read again only when it changed (the plugin's layers each read it at start-up: a
    large pyproject.toml parsed once per layer cost milliseconds per run). Treat the result as read-only."""
    stat = pyproject.stat()
    stamp = (stat.st_mtime_ns, stat.st_size)
    cached = _parsed.get(pyproject)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{pyproject} is not valid TOML: {exc}") from exc
    _parsed[pyproject] = (stamp, data)
    return data


def read_table(start: Path | None = None) -> tuple[Path, Mapping[str, Any]]:
    """The project root and the raw [tool.testbed] table of the nearest pyproject.toml ({} when none)."""
    start = (start or Path.cwd()).resolve()
    pyproject = find_pyproject(start)
    if pyproject is None:
        return start, {}
    table = parse_pyproject(pyproject).get("tool", {}).get("testbed", {})
    return pyproject.parent, table if isinstance(table, Mapping) else {}


def load_settings(start: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read [tool.testbed] from the nearest pyproject.toml (if any) and overlay TESTBED_* env vars."""
    root, table = read_table(start)
    settings = parse_settings(table, root)
    return apply_env(settings, os.environ if environ is None else environ)


def describe_keys(cls: type[Any]) -> list[tuple[str, str, str]]:
    """(key, default, doc) of a settings class, for `testbed doctor` and the docs."""
    out = []
    for name, f in keys_of(cls).items():
        default = f.default if f.default is not dataclasses.MISSING else "{}"
        out.append((name, repr(default), str(f.metadata.get("doc", ""))))
    return out
