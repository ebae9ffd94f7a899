"""Pure logic of the MariaDB/MySQL support: script splitting, version strings, pins, names."""

from __future__ import annotations

import pytest

from testbed.isolation.mysql import trigger_name, worker_db_name
from testbed.schema.mysql_migrations import line_of, split_mysql
from testbed.services.mysql import parse_server_version, split_pin


def statements(sql: str) -> list[str]:
    return [stmt for _, stmt in split_mysql(sql)]


def test_split_respects_quotes_backslashes_backticks_and_comments() -> None:
    sql = (
        "-- leading comment; with a semicolon\n"
        "INSERT INTO t VALUES ('it\\'s; fine', \"a;b\", 'x'';y');\n"
        "# hash comment; too\n"
        "SELECT `odd;name` FROM t /* inline; comment */ WHERE a = 1;\n"
        "SELECT 1"
    )
    assert statements(sql) == [
        "INSERT INTO t VALUES ('it\\'s; fine', \"a;b\", 'x'';y')",
        "SELECT `odd;name` FROM t /* inline; comment */ WHERE a = 1",
        "SELECT 1",
    ]


def test_split_follows_delimiter_lines_for_trigger_bodies() -> None:
    sql = (
        "CREATE TABLE a (id INT);\n"
        "DELIMITER //\n"
        "CREATE TRIGGER a_bi BEFORE INSERT ON a FOR EACH ROW\nBEGIN\n  SET NEW.id = NEW.id + 1;\nEND//\n"
        "DELIMITER ;\n"
        "INSERT INTO a VALUES (1);\n"
    )
    got = statements(sql)
    assert len(got) == 3
    assert got[1].startswith("CREATE TRIGGER") and got[1].endswith("END")
    assert "SET NEW.id = NEW.id + 1;" in got[1]
    assert got[2] == "INSERT INTO a VALUES (1)"


def test_split_offsets_point_at_the_statement_not_the_comment_before_it() -> None:
    sql = "CREATE TABLE a (id INT);\n\n-- why b\nCREATE TABLE b (id INT);\n"
    (_, _), (offset, stmt) = split_mysql(sql)
    assert stmt == "CREATE TABLE b (id INT)"
    assert line_of(sql, offset) == 4


def test_split_keeps_executable_comments_and_ignores_empty_statements() -> None:
    assert statements("/*!40101 SET NAMES utf8mb4 */;\n;;\n  ") == ["/*!40101 SET NAMES utf8mb4 */"]
    assert statements("-- only a comment\n") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/usr/sbin/mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu on x86_64 (Debian 12)",
         ("MariaDB", "10.11.19")),
        ("/usr/sbin/mysqld  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)", ("MySQL", "8.0.36")),
        ("bash: mysqld: command not found", ("", "")),
    ],
)
def test_server_version_and_flavor(text: str, expected: tuple[str, str]) -> None:
    assert parse_server_version(text) == expected


@pytest.mark.parametrize(
    ("pin", "expected"),
    [("10.11", ("", "10.11")), ("mariadb-10.11", ("mariadb", "10.11")), ("MySQL 8.0", ("mysql", "8.0")),
     ("mariadb", ("mariadb", None)), (None, ("", None))],
)
def test_version_pins(pin: str | None, expected: tuple[str, str | None]) -> None:
    assert split_pin(pin) == expected


def test_names_are_valid_mysql_identifiers() -> None:
    assert worker_db_name("gw0") == "testbed_gw0"
    assert worker_db_name("main") == "testbed_main"
    long_a, long_b = "x" * 60 + "a", "x" * 60 + "b"
    assert len(trigger_name("INSERT", long_a)) <= 64
    assert trigger_name("INSERT", long_a) != trigger_name("INSERT", long_b)
    assert trigger_name("DELETE", "orders") == "testbed_dirty_del_orders"


def test_existing_server_urls_round_trip_and_hide_the_password() -> None:
    from testbed.services.mysql import ServerUrl

    tcp = ServerUrl.parse("mysql://app:p%40ss@db.local:3307/")
    assert (tcp.user, tcp.password, tcp.host, tcp.port, tcp.unix_socket) == ("app", "p@ss", "db.local", 3307, "")
    assert tcp.url("testbed_gw0") == "mysql://app:p%40ss@db.local:3307/testbed_gw0"
    assert tcp.connect_kwargs("x")["database"] == "x" and "unix_socket" not in tcp.connect_kwargs()
    assert "p%40ss" not in tcp.redacted() and "***" in tcp.redacted()
    sock = ServerUrl.parse("mysql://root@localhost/?unix_socket=/run/mysqld/mysqld.sock")
    assert sock.connect_kwargs()["unix_socket"] == "/run/mysqld/mysqld.sock"
    assert sock.url("db") == "mysql://root@localhost/db?unix_socket=/run/mysqld/mysqld.sock"


def test_existing_server_url_must_be_mysql() -> None:
    from testbed.errors import ConfigError
    from testbed.services.mysql import ServerUrl

    with pytest.raises(ConfigError, match=r"expected mysql://user:password@host:port/"):
        ServerUrl.parse("postgresql://localhost/")
