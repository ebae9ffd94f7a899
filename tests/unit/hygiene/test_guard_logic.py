"""The guard's pure parts: which command lines start a server, how a connection target is shown."""

from __future__ import annotations

import pytest

from testbed.hygiene.guard import _conninfo_target, server_binary_in


@pytest.mark.parametrize(
    ("command", "server"),
    [
        (["pg_ctl", "-D", "/data", "start"], "pg_ctl"),
        ("/usr/lib/postgresql/16/bin/postgres -D /data", "postgres"),
        (["sudo", "-u", "postgres", "pg_ctl", "start"], "pg_ctl"),
        (["env", "PGDATA=/x", "initdb"], "initdb"),
        (["timeout", "5", "redis-server", "--port", "0"], "redis-server"),
        (["sh", "-c", "cd /tmp && nats-server -p 0"], "nats-server"),
        ("bash -c 'echo hi; mariadbd --datadir=/x'", "mariadbd"),
        (["psql", "-U", "postgres", "-c", "select 1"], None),  # a client, and "postgres" is only its user
        (["git", "status"], None),
        (["sh", "-c", "echo postgres"], None),
        (b"docker run redis", "docker"),
    ],
)
def test_server_binaries(command: object, server: str | None) -> None:
    assert server_binary_in(command) == server


@pytest.mark.parametrize(
    ("args", "kwargs", "shown"),
    [
        (("postgresql://app:s3cret@db.internal:6543/orders?sslmode=disable",), {}, "db.internal:6543/orders"),
        (("host=127.0.0.1 port=5432 dbname=postgres password=s3cret",), {}, "127.0.0.1:5432/postgres"),
        (("",), {"host": "localhost", "port": 5433, "dbname": "x"}, "localhost:5433/x"),
        (("dbname='my db'",), {}, "the default socket/my db"),
    ],
)
def test_connection_targets_never_show_the_password(args: tuple[object, ...], kwargs: dict[str, object],
                                                    shown: str) -> None:
    text = _conninfo_target(args, kwargs)
    assert text == shown
    assert "s3cret" not in text
