"""Settings: the [tool.testbed] table of pyproject.toml plus TESTBED_* env vars, typed and validated.

Every error names the key that was wrong and the keys that are valid, so a typo never silently turns
into a default.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from testbed.errors import ConfigError

ENGINES = ("postgres", "mysql", "redis", "nats", "rabbitmq")
ISOLATION_STRATEGIES = ("rollback", "truncate", "clone", "none")
RUNNERS = ("local", "existing", "docker")
DATA_DIR_CHOICES = ("auto", "tmpfs", "disk")

# Keys accepted in each [tool.testbed.<engine>] table. Kept as data so the error for a typo can list them.
SERVICE_KEYS: dict[str, frozenset[str]] = {
    "postgres": frozenset(
        {"version", "migrations", "isolation", "binary", "runner", "url", "data_dir", "options",
         "seed_tables", "startup_timeout", "leak_check", "port", "migration_timeout"}
    ),
    "mysql": frozenset(
        {"version", "migrations", "isolation", "binary", "runner", "url", "data_dir", "options",
         "seed_tables", "startup_timeout", "leak_check", "port"}
    ),
    "redis": frozenset({"version", "binary", "runner", "url", "data_dir", "options", "startup_timeout", "port"}),
    "nats": frozenset({"version", "binary", "runner", "url", "data_dir", "options", "startup_timeout",
                       "jetstream", "port"}),
    "rabbitmq": frozenset({"version", "binary", "runner", "url", "data_dir", "options",
                           "startup_timeout", "port"}),
}
# "hygiene" is parsed and validated by testbed.hygiene.settings.
TOP_LEVEL_KEYS = frozenset({"services", "http", "cache_dir", "data_dir", "hygiene", *ENGINES})
HTTP_KEYS = frozenset({"mappings", "https", "fail_on_unmatched", "in_process"})


@dataclass(frozen=True)
class ServiceSettings:
    """How one engine is provisioned for a test session."""

    engine: str
    version: str | None = None
    binary: str | None = None
    runner: str = "local"
    url: str | None = None
    data_dir: str = "auto"
    options: Mapping[str, str] = field(default_factory=dict)
    startup_timeout: float = 30.0
    migration_timeout: float = 120.0  # a migration that waits longer (a lock, a sleep) is cancelled
    port: int = 0  # 0 = a free dynamic port
    # SQL engines only.
    migrations: str | None = None
    isolation: str = "rollback"
    seed_tables: tuple[str, ...] | None = None
    leak_check: bool = True
    # NATS only.
    jetstream: bool = True


@dataclass(frozen=True)
class HttpStubSettings:
    """The HTTP stub server's session-wide settings."""

    mappings: str | None = None
    https: bool = False
    fail_on_unmatched: bool = True
    in_process: bool = True


@dataclass(frozen=True)
class Settings:
    """Everything [tool.testbed] and the TESTBED_* env vars configure, for one project."""

    root: Path
    services: tuple[str, ...] = ()
    engines: Mapping[str, ServiceSettings] = field(default_factory=dict)
    http: HttpStubSettings = field(default_factory=HttpStubSettings)
    cache_dir: Path | None = None
    data_dir: str = "auto"

    def service(self, engine: str) -> ServiceSettings:
        """The settings of one engine, with defaults when its table is absent."""
        if engine not in ENGINES:
            raise ConfigError(_unknown("service", engine, ENGINES, "[tool.testbed] services"))
        found = self.engines.get(engine)
        return found if found is not None else ServiceSettings(engine=engine, data_dir=self.data_dir)

    def resolve(self, path: str) -> Path:
        """A path from the config, relative to the project root."""
        p = Path(path)
        return p if p.is_absolute() else self.root / p


def _unknown(kind: str, got: str, valid: Any, where: str) -> str:
    valid_sorted = sorted(valid)
    close = difflib.get_close_matches(got, valid_sorted, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"unknown {kind} {got!r} in {where}.{hint} Valid: {', '.join(valid_sorted)}."


def _expect(value: Any, typ: type | tuple[type, ...], key: str) -> Any:
    if not isinstance(value, typ):
        names = typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)
        raise ConfigError(f"{key} must be a {names}, got {type(value).__name__} {value!r}.")
    return value


def _choice(value: Any, choices: tuple[str, ...], key: str) -> str:
    _expect(value, str, key)
    if value not in choices:
        raise ConfigError(f"{key} = {value!r} is not one of: {', '.join(choices)}.")
    return str(value)


def parse_service(engine: str, table: Mapping[str, Any], *, default_data_dir: str = "auto") -> ServiceSettings:
    """Validate one [tool.testbed.<engine>] table."""
    where = f"[tool.testbed.{engine}]"
    for key in table:
        if key not in SERVICE_KEYS[engine]:
            raise ConfigError(_unknown("key", key, SERVICE_KEYS[engine], where))
    kw: dict[str, Any] = {"engine": engine, "data_dir": default_data_dir}
    if "version" in table:
        v = _expect(table["version"], (str, int, float), f"{where} version")
        kw["version"] = str(v)
    for key in ("binary", "url", "migrations"):
        if key in table:
            kw[key] = _expect(table[key], str, f"{where} {key}")
    if "runner" in table:
        kw["runner"] = _choice(table["runner"], RUNNERS, f"{where} runner")
    if "isolation" in table:
        kw["isolation"] = _choice(table["isolation"], ISOLATION_STRATEGIES, f"{where} isolation")
    if "data_dir" in table:
        dd = _expect(table["data_dir"], str, f"{where} data_dir")
        kw["data_dir"] = dd
    if "options" in table:
        opts = _expect(table["options"], dict, f"{where} options")
        kw["options"] = {str(k): str(v) for k, v in opts.items()}
    for key in ("startup_timeout", "migration_timeout"):
        if key in table:
            kw[key] = float(_expect(table[key], (int, float), f"{where} {key}"))
    if "port" in table:
        kw["port"] = int(_expect(table["port"], (int, str), f"{where} port"))
    if "seed_tables" in table:
        seeds = _expect(table["seed_tables"], list, f"{where} seed_tables")
        kw["seed_tables"] = tuple(str(s) for s in seeds)
    for key in ("leak_check", "jetstream"):
        if key in table:
            kw[key] = _expect(table[key], bool, f"{where} {key}")
    settings = ServiceSettings(**kw)
    if settings.runner == "existing" and not settings.url:
        raise ConfigError(f"{where} runner = 'existing' needs url = '...' (the server to use).")
    return settings


def parse_settings(table: Mapping[str, Any], root: Path) -> Settings:
    """Validate a whole [tool.testbed] table (already parsed from TOML)."""
    for key in table:
        if key not in TOP_LEVEL_KEYS:
            raise ConfigError(_unknown("key", key, TOP_LEVEL_KEYS, "[tool.testbed]"))
    data_dir = "auto"
    if "data_dir" in table:
        data_dir = _expect(table["data_dir"], str, "[tool.testbed] data_dir")
    services: list[str] = []
    if "services" in table:
        for name in _expect(table["services"], list, "[tool.testbed] services"):
            if name not in ENGINES:
                raise ConfigError(_unknown("service", str(name), ENGINES, "[tool.testbed] services"))
            services.append(name)
    engines: dict[str, ServiceSettings] = {}
    for engine in ENGINES:
        if engine in table:
            sub = _expect(table[engine], dict, f"[tool.testbed.{engine}]")
            engines[engine] = parse_service(engine, sub, default_data_dir=data_dir)
    http = HttpStubSettings()
    if "http" in table:
        sub = _expect(table["http"], dict, "[tool.testbed.http]")
        for key in sub:
            if key not in HTTP_KEYS:
                raise ConfigError(_unknown("key", key, HTTP_KEYS, "[tool.testbed.http]"))
        http = HttpStubSettings(
            mappings=_expect(sub["mappings"], str, "[tool.testbed.http] mappings") if "mappings" in sub else None,
            https=bool(sub.get("https", False)),
            fail_on_unmatched=bool(sub.get("fail_on_unmatched", True)),
            in_process=bool(sub.get("in_process", True)),
        )
    cache_dir = Path(_expect(table["cache_dir"], str, "[tool.testbed] cache_dir")) if "cache_dir" in table else None
    return Settings(
        root=root, services=tuple(services), engines=engines, http=http, cache_dir=cache_dir, data_dir=data_dir
    )


def apply_env(settings: Settings, environ: Mapping[str, str]) -> Settings:
    """Overlay TESTBED_<ENGINE>_<KEY> env vars (e.g. TESTBED_POSTGRES_VERSION=15) on the settings."""
    engines = dict(settings.engines)
    for engine in ENGINES:
        prefix = f"TESTBED_{engine.upper()}_"
        overrides = {k[len(prefix):].lower(): v for k, v in environ.items() if k.startswith(prefix)}
        if not overrides:
            continue
        base = settings.service(engine)
        table: dict[str, Any] = {}
        for key, value in overrides.items():
            if key not in SERVICE_KEYS[engine]:
                raise ConfigError(_unknown("env var key", key, SERVICE_KEYS[engine], f"{prefix}*"))
            if key in ("leak_check", "jetstream"):
                table[key] = value.lower() in ("1", "true", "yes", "on")
            elif key == "port":
                table[key] = int(value)
            elif key in ("startup_timeout", "migration_timeout"):
                table[key] = float(value)
            elif key == "seed_tables":
                table[key] = [s for s in value.split(",") if s]
            elif key == "options":
                table[key] = dict(item.split("=", 1) for item in value.split(",") if "=" in item)
            else:
                table[key] = value
        parsed = parse_service(engine, table)
        changes = {k: getattr(parsed, k) for k in table}
        engines[engine] = replace(base, **changes)
    services = settings.services
    if "TESTBED_SERVICES" in environ:
        services = tuple(s.strip() for s in environ["TESTBED_SERVICES"].split(",") if s.strip())
        for s in services:
            if s not in ENGINES:
                raise ConfigError(_unknown("service", s, ENGINES, "TESTBED_SERVICES"))
    http = settings.http
    http_overrides = {k[len("TESTBED_HTTP_"):].lower(): v for k, v in environ.items() if k.startswith("TESTBED_HTTP_")}
    for key, value in http_overrides.items():
        if key not in HTTP_KEYS:
            raise ConfigError(_unknown("env var key", key, HTTP_KEYS, "TESTBED_HTTP_*"))
        http_change: dict[str, Any] = {key: value if key == "mappings" else value.lower() in ("1", "true", "yes", "on")}
        http = replace(http, **http_change)
    cache_dir = Path(environ["TESTBED_CACHE_DIR"]) if environ.get("TESTBED_CACHE_DIR") else settings.cache_dir
    data_dir = environ.get("TESTBED_DATA_DIR", settings.data_dir)
    return replace(settings, engines=engines, services=services, cache_dir=cache_dir, data_dir=data_dir, http=http)


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above ``start``."""
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_settings(start: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read [tool.testbed] from the nearest pyproject.toml (if any) and overlay TESTBED_* env vars."""
    start = (start or Path.cwd()).resolve()
    pyproject = find_pyproject(start)
    table: Mapping[str, Any] = {}
    root = start
    if pyproject is not None:
        root = pyproject.parent
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{pyproject} is not valid TOML: {exc}") from exc
        table = data.get("tool", {}).get("testbed", {})
    settings = parse_settings(table, root)
    return apply_env(settings, os.environ if environ is None else environ)
