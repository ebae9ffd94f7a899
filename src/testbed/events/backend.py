"""What every broker backend of the event capture provides (NATS, JetStream, RabbitMQ, Redis)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from testbed.events.capture import EventCapture

if TYPE_CHECKING:
    from testbed.events.redelivery import FaultyConsumer


class Backend(Protocol):
    """One connection to one broker, shared by every capture of a test on that broker."""

    name: str  # "nats", "jetstream", "rabbitmq", "redis", "redis-stream"
    source: str  # the broker's address without credentials, for messages
    url: str  # the broker's address with credentials (the test consumer connects with it)

    def subscribe(self, capture: EventCapture, **options: Any) -> None:
        """Subscribe ``capture.topic``; return only once the broker has confirmed the subscription."""

    def publish(self, topic: str, payload: bytes, headers: Mapping[str, str] | None = None,
                **options: Any) -> Any:
        """Publish one message (for tests that play the producer, and for round-trip checks); returns the
        broker's acknowledgement where it gives one (JetStream's PubAck)."""

    def close(self) -> None:
        """Unsubscribe everything and close the connection."""


# How to start a test consumer (testbed.events.redelivery) on a broker: (url, topic, handler, **options).
ConsumerOpener = Callable[..., "FaultyConsumer"]


@dataclass(frozen=True)
class BackendKind:
    """A named backend: which engine's server it captures on, how to open it on that server's URL, and how to
    start a test consumer there (None: the broker has no acknowledgements, so nothing to redeliver)."""

    name: str
    engine: str
    open: Callable[[str, Callable[[], str] | None], Backend]
    consume: ConsumerOpener | None = None
    no_consumer_hint: str = ""  # why there is no consumer, and what to use instead


def _nats(jetstream: bool) -> Callable[[str, Callable[[], str] | None], Backend]:
    def open_backend(url: str, diagnose: Callable[[], str] | None) -> Backend:
        from testbed.events.nats import NatsBackend

        return NatsBackend(url, jetstream=jetstream, diagnose=diagnose)

    return open_backend


def _redis(streams: bool) -> Callable[[str, Callable[[], str] | None], Backend]:
    def open_backend(url: str, diagnose: Callable[[], str] | None) -> Backend:
        from testbed.events.redis import RedisBackend

        return RedisBackend(url, streams=streams, diagnose=diagnose)

    return open_backend


def _rabbitmq(url: str, diagnose: Callable[[], str] | None) -> Backend:
    from testbed.events.rabbitmq import RabbitMQBackend

    return RabbitMQBackend(url, diagnose=diagnose)


def _jetstream_consumer(url: str, topic: str, handler: Any, **options: Any) -> FaultyConsumer:
    from testbed.events.jetstream_consumer import JetStreamConsumer

    return JetStreamConsumer(url, topic, handler, **options)


def _rabbitmq_consumer(url: str, topic: str, handler: Any, **options: Any) -> FaultyConsumer:
    from testbed.events.rabbitmq_consumer import RabbitMQConsumer

    return RabbitMQConsumer(url, topic, handler, **options)


def _redis_stream_consumer(url: str, topic: str, handler: Any, **options: Any) -> FaultyConsumer:
    from testbed.events.redis_consumer import RedisStreamConsumer

    return RedisStreamConsumer(url, topic, handler, **options)


# Backends by name; a broker engine added later registers its backend here (register_backend).
BACKENDS: dict[str, BackendKind] = {}


def register_backend(kind: BackendKind) -> None:
    """Make ``events.listen(topic, backend=kind.name)`` available."""
    BACKENDS[kind.name] = kind


_NO_ACKS = "{} delivers each message at most once, with no acknowledgement, so nothing is ever redelivered; use "
for _kind in (BackendKind("nats", "nats", _nats(False), no_consumer_hint=_NO_ACKS.format("core NATS") + "'jetstream'"),
              BackendKind("jetstream", "nats", _nats(True), _jetstream_consumer),
              BackendKind("redis", "redis", _redis(False),
                          no_consumer_hint=_NO_ACKS.format("Redis pub/sub") + "'redis-stream' (consumer groups)"),
              BackendKind("redis-stream", "redis", _redis(True), _redis_stream_consumer),
              BackendKind("rabbitmq", "rabbitmq", _rabbitmq, _rabbitmq_consumer)):
    register_backend(_kind)
