"""runner = "existing": testbed uses a server it did not start (here: one it starts itself for the test)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from testbed.config import ServiceSettings
from testbed.errors import GuardError, ServerStartError, VersionMismatchError
from testbed.provision_mysql import running, start_mysql
from testbed.services.mysql import ADMIN_DB, TEMPLATE_DB, ServerUrl, running_server

MIGRATIONS = Path(__file__).parent / "migrations"


@pytest.fixture
def existing_url() -> Iterator[str]:
    """A password-protected server testbed starts itself, standing in for one the team runs: the test
    needs nothing from the machine and touches no server of anyone else."""
    with running_server(ServiceSettings(engine="mysql")) as server:
        yield server.url()  # mysql://root:<password>@127.0.0.1:<port>/ over loopback TCP


def test_existing_server_template_isolation_and_errors(existing_url: str) -> None:
    settings = ServiceSettings(engine="mysql", runner="existing", url=existing_url, migrations=str(MIGRATIONS))
    with running(settings) as m:
        assert not m.server.cache_hit
        assert m.url.startswith("mysql://root:") and m.url.split("?")[0].endswith("/testbed_main")
        with m.database.isolated("t", "truncate") as ctx, ctx.connection.cursor() as cur:
            cur.execute("INSERT INTO customers (name) VALUES ('x')")
            ctx.connection.commit()
        with m.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM customers")
            assert cur.fetchone()[0] == 0
            cur.execute("SELECT COUNT(*) FROM plans")
            assert cur.fetchone()[0] == 2
    again = start_mysql(settings)
    assert again.cache_hit  # same migrations: the template is reused across runs
    # One test for all checks: two tests on separate xdist workers would race on the same server.
    with pytest.raises(VersionMismatchError, match="requested, but the existing server"):
        start_mysql(ServiceSettings(engine="mysql", runner="existing", url=existing_url, version="5.1"))
    with pytest.raises(ServerStartError, match="cannot reach the existing server"):
        start_mysql(ServiceSettings(engine="mysql", runner="existing",
                                    url="mysql://root:pw@127.0.0.1:1/"))
    target = ServerUrl.parse(existing_url)
    with contextlib.closing(pymysql.connect(**target.connect_kwargs(), autocommit=True)) as conn, \
            conn.cursor() as cur:
        cur.execute(f"DROP DATABASE {TEMPLATE_DB}")
        cur.execute(f"DELETE FROM {ADMIN_DB}.owned WHERE name = %s", (TEMPLATE_DB,))
        cur.execute(f"CREATE DATABASE {TEMPLATE_DB}")  # someone else's database of that name
        with pytest.raises(GuardError, match="did not create"):
            start_mysql(ServiceSettings(engine="mysql", runner="existing", url=existing_url,
                                        migrations=str(MIGRATIONS)))
        cur.execute(f"SHOW DATABASES LIKE '{TEMPLATE_DB}'")
        assert cur.fetchall() == ((TEMPLATE_DB,),)
