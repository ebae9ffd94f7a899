"""The MariaDB/MySQL service: start-up, identity, addresses, errors, death."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import pymysql
import pytest

from testbed.config import ServiceSettings
from testbed.errors import BinaryNotFoundError, ServerDiedError, ServerStartError, VersionMismatchError
from testbed.provision_mysql import RunningMysql
from testbed.runners.users import server_identity
from testbed.services.mysql import MysqlEndpoint, choose_binary, flavor_of, running_server


def test_application_connects_over_loopback_tcp_with_the_generated_password(mysql_running: RunningMysql) -> None:
    ep = mysql_running.endpoint
    assert mysql_running.url == f"mysql://root:{ep.password}@127.0.0.1:{ep.port}/testbed_main"
    conn = pymysql.connect(host="127.0.0.1", port=ep.port, user="root", password=ep.password,
                           database="testbed_main")
    with conn, conn.cursor() as cur:
        cur.execute("SELECT name FROM customers")
        assert cur.fetchall() == ()
        cur.execute("SELECT @@character_set_server, @@log_bin, @@bind_address")
        assert cur.fetchone() == ("utf8mb4", 0, "127.0.0.1")
    with pytest.raises(pymysql.err.OperationalError) as wrong:
        pymysql.connect(host="127.0.0.1", port=ep.port, user="root", password="not-the-password")
    assert wrong.value.args[0] == 1045  # access denied: a password is required over TCP


def test_server_runs_unprivileged_with_private_files_and_no_system_config(mysql_running: RunningMysql) -> None:
    server = mysql_running.server
    assert server.process is not None and server.run_dir is not None
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
    who = server_identity()
    assert uid == (who.uid if who else os.geteuid())
    with mysql_running.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT @@datadir, @@socket, @@tmpdir, @@pid_file, @@port")
        datadir, sock, tmpdir, pidfile, port = cur.fetchone()
    for path in (datadir, sock, tmpdir, pidfile):
        assert str(path).startswith(str(server.run_dir)), path  # nothing from /etc/mysql or /var/lib/mysql
    assert port == server.port != 3306
    assert (Path(sock).parent.stat().st_mode & 0o077) == 0  # socket folder private to the server's user


def test_endpoint_survives_the_trip_to_an_xdist_worker(mysql_running: RunningMysql) -> None:
    ep = mysql_running.endpoint
    copy = MysqlEndpoint.from_dict(ep.to_dict())
    assert copy == ep and copy.alive()
    with copy.connect("testbed_main") as conn, conn.cursor() as cur:
        cur.execute("SELECT code FROM plans ORDER BY code")
        assert cur.fetchall() == (("free",), ("pro",))


def test_second_start_with_same_migrations_comes_from_the_cache(mysql_running: RunningMysql) -> None:
    # The session fixture already built (or reused) the cache entry for these migrations.
    from testbed.provision_mysql import start_mysql

    server = start_mysql(mysql_running.server.settings)
    try:
        assert server.cache_hit
        assert server.password != mysql_running.server.password  # fresh per run
    finally:
        server.stop()


def test_pinned_version_that_is_not_installed_names_what_was_found() -> None:
    with pytest.raises(VersionMismatchError) as err:
        choose_binary(ServiceSettings(engine="mysql", version="5.1"))
    text = str(err.value)
    assert "MariaDB/MySQL 5.1 requested, but found only" in text
    assert choose_binary(ServiceSettings(engine="mysql")).path in text
    assert "[tool.testbed.mysql] version" in text and "binary" in text


def test_pins_select_by_version_prefix_and_flavor() -> None:
    found = choose_binary(ServiceSettings(engine="mysql"))
    major_minor = ".".join(found.version.split(".")[:2])
    assert choose_binary(ServiceSettings(engine="mysql", version=major_minor)).path == found.path
    flavor = flavor_of(found.path).lower()
    other = "mysql" if flavor == "mariadb" else "mariadb"
    assert choose_binary(ServiceSettings(engine="mysql", version=f"{flavor}-{major_minor}")).path == found.path
    with pytest.raises(VersionMismatchError, match=f"{other}-{major_minor} requested"):
        choose_binary(ServiceSettings(engine="mysql", version=f"{other}-{major_minor}"))


def test_explicit_binary_that_does_not_exist() -> None:
    with pytest.raises(BinaryNotFoundError, match=r"binary = '/nonexistent/mariadbd'.*no mariadbd or mysqld"):
        choose_binary(ServiceSettings(engine="mysql", binary="/nonexistent/mariadbd"))


def test_start_up_error_carries_the_server_log() -> None:
    settings = ServiceSettings(engine="mysql", options={"innodb_buffer_pool_size": "not-a-size"},
                               startup_timeout=20)
    with pytest.raises(ServerStartError) as err, running_server(settings):
        pass
    text = str(err.value)
    assert text.startswith("[MariaDB]") or text.startswith("[MySQL]")
    assert "exited during start-up" in text and "last log lines" in text
    assert "innodb" in text.lower()  # the server's own complaint, not just an exit code


@pytest.mark.slow
def test_killed_server_gives_a_clear_error_not_a_hang() -> None:
    with running_server(ServiceSettings(engine="mysql")) as server:
        ep = MysqlEndpoint.of(server)
        conn = ep.connect()
        os.kill(ep.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while ep.alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(pymysql.err.OperationalError), conn.cursor() as cur:
            cur.execute("SELECT 1")
        with contextlib.suppress(Exception):  # its socket, or the GC closes it later inside another test
            conn.close()
        with pytest.raises(ServerDiedError, match=r"is no longer running .*last log lines"):
            ep.connect()
        with pytest.raises(ServerDiedError, match="MariaDB is gone|MySQL is gone"):
            server.check_alive()
