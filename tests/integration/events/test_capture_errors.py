"""Capture set-up errors and a broker dying while a test waits: clear failures, never hangs."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import pytest

from testbed.events import BrokerConnectionLostError, EventCapture
from testbed.events.nats import NatsBackend, NatsCaptureError
from testbed.events.rabbitmq import RabbitMQBackend, RabbitMQCaptureError
from testbed.events.redis import RedisBackend
from testbed.services import nats as nats_service
from testbed.services import rabbitmq as rabbitmq_service
from testbed.services import redis as redis_service


def test_jetstream_listen_without_a_stream_says_what_to_create(events: Any) -> None:
    with pytest.raises(NatsCaptureError, match="no stream stores subject 'nostream.x'.*Create the stream first"):
        events.listen("nostream.x", backend="jetstream")


def test_rabbitmq_listen_on_a_missing_exchange_says_what_to_declare(events: Any) -> None:
    with pytest.raises(RabbitMQCaptureError, match="exchange 'no-such-exchange' does not exist"):
        events.listen("orders.created", backend="rabbitmq", exchange="no-such-exchange")


def _kill_soon(pid: int) -> threading.Timer:
    timer = threading.Timer(0.1, os.kill, [pid, signal.SIGKILL])
    timer.start()
    return timer


def test_killing_nats_mid_expect_fails_with_the_server_log() -> None:
    with nats_service.running() as server:
        endpoint = server.endpoint()
        backend = NatsBackend(server.url, diagnose=lambda: endpoint.check_alive(settle=2) or "alive")
        try:
            cap = EventCapture("orders.created", "nats", backend.source, diagnose=backend.diagnose)
            backend.subscribe(cap)
            _kill_soon(endpoint.pid).join()
            with pytest.raises(BrokerConnectionLostError) as info:
                cap.expect({"orderId": "never"}, timeout=60)
        finally:
            backend.close()
    assert "[nats] the connection to nats://127.0.0.1:" in str(info.value)
    assert "is no longer running" in str(info.value) and "Its last log lines" in str(info.value)


def test_killing_redis_mid_expect_fails_with_the_server_log() -> None:
    with redis_service.running() as server:
        endpoint = server.endpoint()
        backend = RedisBackend(endpoint.database_url(0), streams=True,
                               diagnose=lambda: endpoint.check_alive(settle=2) or "alive")
        try:
            cap = EventCapture("orders", "redis-stream", backend.source, diagnose=backend.diagnose)
            backend.subscribe(cap)
            _kill_soon(endpoint.pid).join()
            with pytest.raises(BrokerConnectionLostError, match="Redis .* is no longer running"):
                cap.expect(timeout=60)
        finally:
            backend.close()


def test_killing_rabbitmq_mid_expect_fails_with_the_server_log() -> None:
    with rabbitmq_service.running() as server:
        endpoint = server.endpoint()
        backend = RabbitMQBackend(endpoint.url, diagnose=lambda: endpoint.check_alive(settle=2) or "alive")
        try:
            cap = EventCapture("orders.created", "rabbitmq", backend.source, diagnose=backend.diagnose)
            backend.subscribe(cap)
            _kill_soon(endpoint.pid).join()
            with pytest.raises(BrokerConnectionLostError, match="RabbitMQ .* is no longer running"):
                cap.expect(timeout=60)
        finally:
            backend.close()
