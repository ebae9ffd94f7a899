"""RabbitMQ started by testbed: its own node, epmd, ports and vhost per worker; per-test reset."""

from __future__ import annotations

import os
import socket
from typing import Any

import pika
import pytest

from testbed.config import ServiceSettings
from testbed.errors import BinaryNotFoundError, ServerDiedError, VersionMismatchError
from testbed.services import rabbitmq as rabbitmq_service


def test_fixture_url_opens_a_channel_on_this_workers_vhost(rabbitmq_url: str, testbed_rabbitmq_server: Any) -> None:
    vhost = testbed_rabbitmq_server.vhost_for(os.environ.get("PYTEST_XDIST_WORKER"))
    params = pika.URLParameters(rabbitmq_url)
    assert params.virtual_host == vhost
    conn = pika.BlockingConnection(params)
    try:
        ch = conn.channel()
        ch.queue_declare("work")
        ch.basic_publish("", "work", b"job-1")
        method, _props, body = ch.basic_get("work", auto_ack=True)
        assert body == b"job-1"
    finally:
        conn.close()


def test_reset_deletes_the_queues_and_exchanges_a_test_declared(testbed_rabbitmq_server: Any,
                                                                 rabbitmq_url: str) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    try:
        ch = conn.channel()
        ch.exchange_declare("orders", "topic", durable=True)
        ch.queue_declare("orders-audit", durable=True)
        ch.queue_bind("orders-audit", "orders", "#")
    finally:
        conn.close()
    vhost = pika.URLParameters(rabbitmq_url).virtual_host
    removed = testbed_rabbitmq_server.reset(vhost)
    assert sorted(removed) == ["exchange orders", "queue orders-audit"]
    assert testbed_rabbitmq_server.queues(vhost) == []


def test_the_node_never_registers_with_the_system_epmd(testbed_rabbitmq_server: Any) -> None:
    assert testbed_rabbitmq_server.port not in (5672, 25672)
    try:
        with socket.create_connection(("127.0.0.1", 4369), timeout=1) as s:
            s.sendall(b"\x00\x01n")  # NAMES_REQ
            data = b""
            while chunk := s.recv(4096):
                data += chunk
    except OSError:
        pytest.skip("no system epmd on 127.0.0.1:4369 to compare with")
    assert b"name testbed " not in data, data


def test_the_debian_wrapper_is_resolved_to_the_real_script() -> None:
    binary = rabbitmq_service.choose_binary(ServiceSettings(engine="rabbitmq"))
    assert binary.version.count(".") >= 1
    with open(binary.path, "rb") as f:
        assert b"su rabbitmq" not in f.read()


def test_pinned_version_mismatch_and_no_pip_bundle_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(VersionMismatchError, match=r"(?s)RabbitMQ 2.1 requested.*RabbitMQ has no pip bundle"):
        rabbitmq_service.choose_binary(ServiceSettings(engine="rabbitmq", version="2.1"))
    monkeypatch.setenv("TESTBED_BINARY_SOURCES", "pip")
    with pytest.raises(BinaryNotFoundError, match=r"(?s)no RabbitMQ server binary found.*apt install rabbitmq-server"):
        rabbitmq_service.choose_binary(ServiceSettings(engine="rabbitmq"))


def test_endpoint_round_trips_through_a_dict(testbed_rabbitmq_server: Any) -> None:
    data = testbed_rabbitmq_server.to_dict()
    assert rabbitmq_service.RabbitMQEndpoint.from_dict(data) == testbed_rabbitmq_server


def test_a_dead_node_is_reported_with_its_log() -> None:
    ep = rabbitmq_service.RabbitMQEndpoint(
        host="127.0.0.1", port=1, management_port=0, password="x", vhosts=("testbed",), version="3",
        binary="rabbitmq-server", source="PATH", pid=2**22 + 7, start_time=1, log_path="/nonexistent.log",
    )
    with pytest.raises(ServerDiedError, match=r"RabbitMQ \(pid \d+, port 1\) is no longer running"):
        ep.check_alive()


def test_every_port_of_the_node_is_on_loopback(testbed_rabbitmq_server: Any) -> None:
    from ..listening import listening, not_loopback

    addresses = listening(testbed_rabbitmq_server.pid)
    assert len(addresses) >= 2, addresses  # AMQP and the Erlang distribution port at least
    assert not_loopback(addresses) == set(), f"the node listens beyond loopback: {addresses}"


def test_a_cold_cache_with_a_vhost_per_worker(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Under -n 2 the node gets a vhost per worker; its first boot (which builds the cached database) has
    # only "/" and must still come up, and cache what it built.
    monkeypatch.setenv("TESTBED_CACHE_DIR", str(tmp_path / "cache"))
    vhosts = ("testbed-gw0", "testbed-gw1")
    with rabbitmq_service.running(ServiceSettings(engine="rabbitmq"), vhosts=vhosts) as node:
        assert not node.cache_hit
        endpoint = node.endpoint()
        for vhost in vhosts:
            conn = pika.BlockingConnection(pika.URLParameters(endpoint.url(vhost)))
            conn.close()
    assert list((tmp_path / "cache" / "rabbitmq").glob("*/ready")), "the first boot's database was not cached"
