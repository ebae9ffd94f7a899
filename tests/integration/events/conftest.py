"""Producers that publish with each broker's own client, independent of testbed's capture backends."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import pika
import pytest

Producer = Callable[[str, bytes, Mapping[str, str]], None]
BACKENDS = ["nats", "jetstream", "rabbitmq", "redis", "redis-stream"]
STREAM = "TESTBED_EVENTS"


async def _nats_publish(url: str, subject: str, data: bytes, headers: Mapping[str, str], js: bool) -> None:
    import nats

    nc = await nats.connect(url, allow_reconnect=False)
    try:
        if js:
            await nc.jetstream().publish(subject, data, headers=dict(headers) or None)
        else:
            await nc.publish(subject, data, headers=dict(headers) or None)
            await nc.flush()
    finally:
        await nc.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def producer(backend: str, request: pytest.FixtureRequest) -> Producer:
    """Publish like an application would: the broker's own client, its own connection."""
    if backend in ("nats", "jetstream"):
        server = request.getfixturevalue("testbed_nats_server")
        url = request.getfixturevalue("nats_url")  # streams created by the test are removed after it
        if backend == "jetstream":
            server.jetstream_api(f"STREAM.CREATE.{STREAM}",
                                       {"name": STREAM, "subjects": ["js.>"], "storage": "memory"})

        def publish_nats(topic: str, data: bytes, headers: Mapping[str, str]) -> None:
            asyncio.run(_nats_publish(url, topic, data, headers, backend == "jetstream"))

        return publish_nats
    if backend == "rabbitmq":
        url = request.getfixturevalue("rabbitmq_url")

        def publish_amqp(topic: str, data: bytes, headers: Mapping[str, str]) -> None:
            conn = pika.BlockingConnection(pika.URLParameters(url))
            try:
                conn.channel().basic_publish("amq.topic", topic, data, pika.BasicProperties(headers=dict(headers)))
            finally:
                conn.close()

        return publish_amqp
    client: Any = request.getfixturevalue("redis")

    def publish_redis(topic: str, data: bytes, headers: Mapping[str, str]) -> None:
        if backend == "redis":
            client.publish(topic, data)
        else:
            client.xadd(topic, {"data": data, **headers})

    return publish_redis


@pytest.fixture
def make_topic(events: Any, backend: str) -> Callable[[str], str]:
    """A per-worker, per-test topic name (JetStream: under the test stream's subjects)."""

    def make(base: str) -> str:
        name = events.name(base)
        return f"js.{name}" if backend == "jetstream" else name

    return make
