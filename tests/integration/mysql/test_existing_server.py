"""runner = "existing": testbed uses a server it did not start (here: the machine's own MariaDB, if any)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from testbed.config import ServiceSettings
from testbed.errors import GuardError, ServerStartError, VersionMismatchError
from testbed.provision_mysql import running, start_mysql
from testbed.services.mysql import ADMIN_DB, TEMPLATE_DB, ServerUrl

MIGRATIONS = Path(__file__).parent / "migrations"
# The system server's socket, where root logs in by unix_socket authentication; override to point elsewhere.
URL = os.environ.get("TESTBED_TEST_MYSQL_EXISTING_URL", "mysql://root@localhost/?unix_socket=/run/mysqld/mysqld.sock")


@pytest.fixture
def existing_url() -> Iterator[str]:
    target = ServerUrl.parse(URL)
    try:
        conn = pymysql.connect(**target.connect_kwargs(), connect_timeout=2)
    except pymysql.err.MySQLError as exc:
        pytest.skip(f"no existing MariaDB/MySQL server reachable at {target.redacted()} ({exc}); set "
                    "TESTBED_TEST_MYSQL_EXISTING_URL to run this test against one")
    with contextlib.closing(conn), conn.cursor() as cur:
        # Other checkouts on this machine run this test too: one at a time on the shared server.
        cur.execute("SELECT GET_LOCK('testbed_existing_server_test', 120)")
        if cur.fetchone()[0] != 1:
            pytest.skip("another run holds the existing-server test lock for over 120 s")
        cur.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'testbed%%'")
        present = [r[0] for r in cur.fetchall()]
        if present:
            pytest.skip(f"the existing server already has testbed databases {present}: not touching them")
        conn.autocommit(True)
        try:
            yield URL
        finally:
            cur.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'testbed%%'")
            for (name,) in cur.fetchall():  # only what this test created: there were none before
                cur.execute(f"DROP DATABASE `{name}`")


def test_existing_server_template_isolation_and_errors(existing_url: str) -> None:
    settings = ServiceSettings(engine="mysql", runner="existing", url=existing_url, migrations=str(MIGRATIONS))
    with running(settings) as m:
        assert not m.server.cache_hit
        assert m.url.startswith("mysql://root@localhost/testbed_main?unix_socket=")
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
