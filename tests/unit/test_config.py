from __future__ import annotations

from pathlib import Path

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
    assert s.http.mappings == "other"
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
