"""What every broker backend of the event capture provides (NATS, JetStream, RabbitMQ, Redis)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from testbed.events.capture import EventCapture


class Backend(Protocol):
    """One connection to one broker, shared by every capture of a test on that broker."""

    name: str  # "nats", "jetstream", "rabbitmq", "redis", "redis-stream"
    source: str  # the broker's address without credentials, for messages

    def subscribe(self, capture: EventCapture, **options: Any) -> None:
        """Subscribe ``capture.topic``; return only once the broker has confirmed the subscription."""

    def publish(self, topic: str, payload: bytes, headers: Mapping[str, str] | None = None,
                **options: Any) -> None:
        """Publish one message (for tests that play the producer, and for round-trip checks)."""

    def close(self) -> None:
        """Unsubscribe everything and close the connection."""


@dataclass(frozen=True)
class BackendKind:
    """A named backend: which engine's server it captures on, and how to open it on that server's URL."""

    name: str
    engine: str
    open: Callable[[str, Callable[[], str] | None], Backend]


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


# Backends by name; a broker engine added later registers its backend here (register_backend).
BACKENDS: dict[str, BackendKind] = {}


def register_backend(kind: BackendKind) -> None:
    """Make ``events.listen(topic, backend=kind.name)`` available."""
    BACKENDS[kind.name] = kind


for _kind in (BackendKind("nats", "nats", _nats(False)), BackendKind("jetstream", "nats", _nats(True)),
              BackendKind("redis", "redis", _redis(False)), BackendKind("redis-stream", "redis", _redis(True)),
              BackendKind("rabbitmq", "rabbitmq", _rabbitmq)):
    register_backend(_kind)
