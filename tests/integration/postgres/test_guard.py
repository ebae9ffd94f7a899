"""Data safety: testbed refuses to truncate, clone or drop a database it did not create."""

from __future__ import annotations

import psycopg
import pytest

from testbed.errors import GuardError
from testbed.provision import postgres


def test_refuses_databases_without_its_marker() -> None:
    with postgres() as pg:
        with pg.server.connect(autocommit=True) as admin:
            admin.execute("CREATE DATABASE someones_real_data")
            admin.execute("CREATE TABLE IF NOT EXISTS customers (id int)")
        worker = pg.database
        with psycopg.connect(**pg.endpoint.conninfo("someones_real_data")) as foreign:
            with pytest.raises(GuardError, match="not created by testbed"):
                worker._guard(foreign, "truncate")
            with pytest.raises(psycopg.errors.InvalidSchemaName):
                foreign.execute("SELECT testbed.reset()")  # the cleanup only exists in testbed's databases
        with pytest.raises(GuardError, match="did not create it"):
            worker.drop("someones_real_data")
        with pg.server.connect() as check:
            names = {r[0] for r in check.execute("SELECT datname FROM pg_database").fetchall()}
        assert "someones_real_data" in names


def test_accepts_its_own_worker_database() -> None:
    with postgres() as pg, psycopg.connect(pg.url) as conn:
        pg.database._guard(conn, "truncate")  # no error
