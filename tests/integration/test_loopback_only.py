"""Every server testbed starts listens on loopback only (RabbitMQ: tests/integration/services)."""

from __future__ import annotations

from testbed.config import ServiceSettings
from testbed.services import mysql, nats, postgres, redis

from .listening import listening, not_loopback


def test_postgres_listens_on_loopback_only() -> None:
    server = postgres.PostgresServer(ServiceSettings(engine="postgres")).start()
    try:
        assert server.process is not None
        addresses = listening(server.process.pid)
        assert addresses and not_loopback(addresses) == set(), addresses
    finally:
        server.stop()


def test_redis_and_nats_listen_on_loopback_only() -> None:
    with redis.running() as r, nats.running() as n:
        for server in (r, n):
            assert server.process is not None
            addresses = listening(server.process.pid)
            assert addresses and not_loopback(addresses) == set(), addresses


def test_mariadb_listens_on_loopback_only() -> None:
    with mysql.running_server(ServiceSettings(engine="mysql")) as m:
        assert m.process is not None
        addresses = listening(m.process.pid)
        assert addresses and not_loopback(addresses) == set(), addresses
