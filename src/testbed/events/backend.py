"""What every broker backend of the event capture provides (NATS, JetStream, RabbitMQ, Redis)."""

from __future__ import annotations

from collections.abc import Mapping
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
