"""Publishing, injecting and consuming by URL, without the pytest fixture (the same code the fixture runs).

    testbed.events.publish(nats_url, "orders.created", {"orderId": "o-1"})
    await testbed.events.publish_async(url, "orders.created", {...}, backend="rabbitmq")
    testbed.events.inject(url, "orders.status", [created, paid, shipped], backend="jetstream")
    with testbed.events.consume(url, "payments", handle, backend="redis-stream",
                                faults=["crash-before-ack"]) as consumer:
        ...
        consumer.wait_acked(1)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from testbed.events.backend import BACKENDS, Backend
from testbed.events.capture import encode_payload
from testbed.events.injection import Injection, publish_injection
from testbed.events.recorder import EventsUsageError
from testbed.events.redelivery import Delivery, FaultyConsumer


def _open(url: str, backend: str) -> Backend:
    if backend not in BACKENDS:
        raise EventsUsageError(f"unknown backend {backend!r}; available: {', '.join(sorted(BACKENDS))}.")
    return BACKENDS[backend].open(url, None)


def publish(url: str, topic: str, payload: Any, *, backend: str = "nats", headers: Mapping[str, str] | None = None,
            **options: Any) -> Any:
    """Publish one message to the broker at ``url`` (bytes as-is, str as UTF-8, else JSON); returns the broker's
    acknowledgement where there is one (JetStream's PubAck)."""
    be = _open(url, backend)
    try:
        return be.publish(topic, encode_payload(payload), headers, **options)
    finally:
        be.close()


async def publish_async(url: str, topic: str, payload: Any, *, backend: str = "nats",
                        headers: Mapping[str, str] | None = None, **options: Any) -> Any:
    """``publish`` from async code: the connection and the round trip run off the event loop."""
    return await asyncio.to_thread(publish, url, topic, payload, backend=backend, headers=headers, **options)


def inject(url: str, topic: str, messages: Iterable[Any], *, backend: str = "nats", duplicates: int = 1,
           order: str | Sequence[int] = "reversed", seed: int | None = None,
           headers: Mapping[str, str] | Callable[[Any], Mapping[str, str]] | None = None, **options: Any) -> Injection:
    """Publish ``messages`` with duplicates and out of order (see ``EventRecorder.inject``)."""
    be = _open(url, backend)
    try:
        return publish_injection(be, topic, list(messages), duplicates=duplicates, order=order, seed=seed,
                                 headers=headers, **options)
    finally:
        be.close()


def consume(url: str, topic: str, handler: Callable[[Delivery], Any], *, backend: str = "jetstream",
            **options: Any) -> FaultyConsumer:
    """A test consumer on the broker at ``url`` (see ``EventRecorder.consume``); close it, or use it in ``with``."""
    kind = BACKENDS.get(backend)
    if kind is None or kind.consume is None:
        hint = kind.no_consumer_hint if kind is not None and kind.no_consumer_hint else "no test consumer for it"
        raise EventsUsageError(f"consume({topic!r}, backend={backend!r}): {hint}.")
    return kind.consume(url, topic, handler, **options)
