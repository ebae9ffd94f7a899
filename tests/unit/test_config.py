from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from testbed.config import apply_env, parse_settings
from testbed.errors import ConfigError


def test_typo_in_engine_table_names_valid_keys() -> None:
    with pytest.raises(ConfigError) as exc:
        parse_settings({"postgres": {"verison": "16"}}, Path("/p"))
    message = str(exc.value)
    assert "'verison'" in message
    assert "Did you mean 'version'?" in message
    assert "migrations" in message  # lists the valid keys


def test_typo_at_top_level_names_valid_keys() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'services'"):
        parse_settings({"servises": ["postgres"]}, Path("/p"))


def test_unknown_service_is_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown service 'postgress'"):
        parse_settings({"services": ["postgress"]}, Path("/p"))


def test_isolation_must_be_a_known_strategy() -> None:
    with pytest.raises(ConfigError, match="rollback, truncate, clone, none"):
        parse_settings({"postgres": {"isolation": "wipe"}}, Path("/p"))


def test_version_number_is_normalised_to_string() -> None:
    s = parse_settings({"postgres": {"version": 16}}, Path("/p"))
    assert s.service("postgres").version == "16"


def test_env_overrides_pyproject() -> None:
    s = parse_settings({"postgres": {"version": "16", "migrations": "m/"}}, Path("/p"))
    s = apply_env(s, {"TESTBED_POSTGRES_VERSION": "15"})
    pg = s.service("postgres")
    assert pg.version == "15"
    assert pg.migrations == "m/"


def test_env_typo_is_an_error() -> None:
    s = parse_settings({}, Path("/p"))
    with pytest.raises(ConfigError, match="TESTBED_POSTGRES_"):
        apply_env(s, {"TESTBED_POSTGRES_VERSOIN": "15"})


def test_existing_runner_needs_url() -> None:
    with pytest.raises(ConfigError, match="needs url"):
        parse_settings({"redis": {"runner": "existing"}}, Path("/p"))


def test_http_env_vars() -> None:
    s = apply_env(parse_settings({"http": {"mappings": "stubs"}}, Path("/p")),
                  {"TESTBED_HTTP_FAIL_ON_UNMATCHED": "false", "TESTBED_HTTP_MAPPINGS": "other"})
    assert s.http.fail_on_unmatched is False
    assert s.http.mappings == "/p/other"  # paths resolve against the project root
    with pytest.raises(ConfigError, match="TESTBED_HTTP_"):
        apply_env(s, {"TESTBED_HTTP_MAPPING": "x"})


def test_postgres_install_hints_name_only_what_provides_the_version() -> None:
    from testbed.services.postgres import install_hint

    assert "pgserver wheel bundles PostgreSQL 16" in install_hint("16")
    assert "pgserver" not in install_hint("15") and "apt install postgresql-15" in install_hint("15")
    assert "pgserver" not in install_hint("17.2") and "postgresql@17" in install_hint("17.2")
    nine = install_hint("9")
    assert "apt install" not in nine and "not a major version anyone packages" in nine
    assert "pytest-testbed[pg]" in install_hint(None)


def test_errors_keep_their_type_boundary_and_message_over_the_wire() -> None:
    from testbed.errors import MigrationError, TestbedError, from_wire, to_wire

    back = from_wire(to_wire(MigrationError("001.sql:3 failed", boundary="postgres migrations")))
    assert type(back) is MigrationError and back.boundary == "postgres migrations"
    assert str(back) == "[postgres migrations] 001.sql:3 failed"
    unknown = from_wire({"type": "NatsProtocolError", "boundary": "nats", "message": "-ERR"})
    assert type(unknown) is TestbedError and str(unknown) == "[nats] -ERR"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"http": {"https": "false"}}, r"\[tool.testbed.http\] https must be true or false, got str 'false'"),
        ({"http": {"in_process": 1}}, r"in_process must be true or false"),
        ({"postgres": {"port": "abc"}}, r"\[tool.testbed.postgres\] port must be an integer, got str 'abc'"),
        ({"postgres": {"port": -5}}, r"port = -5 is out of range: expected 0 to 65535"),
        ({"redis": {"port": 70000}}, r"port = 70000 is out of range"),
        ({"postgres": {"startup_timeout": -1}}, r"startup_timeout = -1 is out of range"),
        ({"postgres": {"startup_timeout": True}}, r"startup_timeout must be a number"),
        ({"postgres": {"leak_check": "no"}}, r"leak_check must be true or false"),
        ({"postgres": {"seed_tables": "plans"}}, r"seed_tables must be a list of strings"),
        ({"postgres": {"options": ["a"]}}, r"options must be a table"),
        ({"postgres": {"data_dir": "tmpfs2"}}, r"data_dir = 'tmpfs2': not one of auto, tmpfs, disk and no such "
                                               r"folder \(/p/tmpfs2\). Did you mean 'tmpfs'\?"),
        ({"nats": {"runner": "docker"}}, r"runner = 'docker' is not available yet"),
        ({"nats": {"runner": "locl"}}, r"Did you mean 'local'"),
        ({"nats": {"jetstream": "yes"}}, r"jetstream must be true or false"),
    ],
)
def test_every_key_is_type_and_range_checked(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_settings(table, Path("/p"))


def test_env_values_are_checked_like_toml() -> None:
    base = parse_settings({}, Path("/p"))
    with pytest.raises(ConfigError, match="TESTBED_POSTGRES_PORT='abc' must be an integer"):
        apply_env(base, {"TESTBED_POSTGRES_PORT": "abc"})
    with pytest.raises(ConfigError, match="TESTBED_HTTP_HTTPS='maybe' must be one of"):
        apply_env(base, {"TESTBED_HTTP_HTTPS": "maybe"})
    assert apply_env(base, {"TESTBED_HTTP_HTTPS": "false"}).http.https is False
    assert apply_env(base, {"TESTBED_REDIS_PORT": "6390"}).service("redis").port == 6390


def test_relative_paths_resolve_against_the_project_root(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    s = parse_settings({"postgres": {"data_dir": "data", "binary": "pg/bin"}, "http": {"mappings": "stubs"}},
                       tmp_path)
    assert s.service("postgres").data_dir == str(tmp_path / "data")
    assert s.service("postgres").binary == str(tmp_path / "pg" / "bin")
    assert s.http.mappings == str(tmp_path / "stubs")


def test_each_engine_brings_its_own_keys() -> None:
    with pytest.raises(ConfigError, match="unknown key 'migrations' in \\[tool.testbed.redis\\]"):
        parse_settings({"redis": {"migrations": "m/"}}, Path("/p"))
    assert parse_settings({"nats": {"jetstream": False}}, Path("/p")).service("nats").jetstream is False


def test_legacy_service_settings_build_the_engines_class() -> None:
    from testbed.config import ServiceSettings, SqlSettings

    pg = ServiceSettings(engine="postgres", migrations="m/")
    assert isinstance(pg, SqlSettings) and pg.migrations == "m/"


@pytest.mark.parametrize(("table", "environ", "expected"), [
    ({}, {}, True),  # on by default on a developer's machine
    ({"reuse": False}, {}, False),
    ({}, {"CI": "true"}, False),
    ({"reuse": True}, {"CI": "true"}, False),  # CI runs start fresh whatever the project's config says
    ({"reuse": True}, {}, True),
])
def test_servers_are_kept_between_runs_only_outside_ci(table: dict[str, Any], environ: dict[str, str],
                                                      expected: bool) -> None:
    assert parse_settings(table, Path("/p")).reuse_servers(environ) is expected
