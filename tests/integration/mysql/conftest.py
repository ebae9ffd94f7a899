"""A migrated MariaDB/MySQL server started through the library (one per xdist worker of this suite)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.config import ServiceSettings
from testbed.provision_mysql import RunningMysql, running
from testbed.services.mysql import discover

HERE = Path(__file__).parent
MIGRATIONS = HERE / "migrations"



@pytest.fixture(autouse=True, scope="session")
def _needs_a_server_binary() -> None:
    if not discover(ServiceSettings(engine="mysql")):
        reason = "no MariaDB/MySQL server binary (mariadbd/mysqld) on this machine"
        if os.environ.get("CI"):  # CI machines have one: a skip there would hide the whole feature
            pytest.fail(f"{reason}; CI must run the MariaDB tests", pytrace=False)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def mysql_running() -> Iterator[RunningMysql]:
    with running(ServiceSettings(engine="mysql", migrations=str(MIGRATIONS))) as m:
        yield m


@pytest.fixture
def migrations_copy(tmp_path: Path) -> Path:
    """A private copy of the test migrations that a test may change."""
    dest = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, dest)
    return dest
