"""[tool.testbed.env] templates rendered for the database a migration fills."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from testbed.errors import ConfigError
from testbed.handoff import app_environment, environment

VIEW = {"host": "127.0.0.1", "port": "5555", "database": "testbed_template", "url": "postgresql://x/testbed_template"}


def test_only_the_variables_naming_the_migrating_engine_are_rendered(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.testbed.env]\n'
        'POSTGRES_DB = "{postgres.database}"\n'
        'DSN = "host={postgres.host} port={postgres.port}"\n'
        'REDIS_URL = "{redis.url}"\n'
        'MIXED = "{postgres.url}|{redis.url}"\n'
        'CONSTANT = "on"\n'
    )
    assert app_environment(tmp_path, "postgres", VIEW) == {
        "POSTGRES_DB": "testbed_template", "DSN": "host=127.0.0.1 port=5555"}


def test_a_project_without_the_table_gets_nothing(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.testbed.postgres]\nmigrations = "alembic"\n')
    assert app_environment(tmp_path, "postgres", VIEW) == {}


def test_an_unknown_key_names_what_the_engine_offers(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.testbed.env]\nPGDB = "{postgres.dbname}"\n')
    with pytest.raises(ConfigError, match=r"\{postgres.dbname\} is not known; postgres offers: database, host"):
        app_environment(tmp_path, "postgres", VIEW)


def test_environment_restores_what_was_there(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTBED_T_SET", "before")
    monkeypatch.delenv("TESTBED_T_UNSET", raising=False)
    with environment({"TESTBED_T_SET": "during", "TESTBED_T_UNSET": "during"}):
        assert (os.environ["TESTBED_T_SET"], os.environ["TESTBED_T_UNSET"]) == ("during", "during")
    assert os.environ["TESTBED_T_SET"] == "before"
    assert "TESTBED_T_UNSET" not in os.environ
