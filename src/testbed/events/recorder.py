"""EventRecorder: the ``events`` object a test uses: listen before the action, expect after it.

It owns one backend connection per broker (opened on first use) and one EventCapture per topic listened
to. ``expect`` on a topic nobody listened to is an error, not an empty wait: listening after the action
would race with the publisher, and the test would pass or fail by luck.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from testbed.errors import TestbedError
from testbed.events import names
from testbed.events.backend import BACKENDS, Backend
from testbed.events.capture import CapturedMessage, Decoder, EventCapture, decode_payload, encode_payload
from testbed.events.injection import Injection, publish_injection
from testbed.events.matchers import Matcher
from testbed.events.redelivery import (
    DEFAULT_MAX_DELIVER,
    DEFAULT_REDELIVER_AFTER,
    Delivery,
    FaultPlan,
    FaultyConsumer,
)

__all__ = ["EventRecorder", "EventsUsageError", "encode_payload"]

BackendFactory = Callable[[], Backend]


class EventsUsageError(TestbedError):
    """The events API was used in a way that cannot give a reliable answer."""

    boundary = "events"


class EventRecorder:
    """Listen to topics on real brokers before the action, then wait for what the code published."""

    def __init__(self, backends: Mapping[str, BackendFactory], *, default_backend: str | None = None,
                 worker: str | None = None, nodeid: str = "") -> None:
        self._factories = dict(backends)
        self.default_backend = default_backend
        self.worker = worker
        self.nodeid = nodeid
        self._backends: dict[str, Backend] = {}
        self._captures: dict[tuple[str, str], EventCapture] = {}
        self._consumers: list[FaultyConsumer] = []

    def _backend_name(self, backend: str | None) -> str:
        name = backend or self.default_backend
        if name is None:
            raise EventsUsageError(
                f"no backend given and no default: pass backend= one of {', '.join(sorted(self._factories))}."
            )
        if name not in self._factories:
            raise EventsUsageError(
                f"unknown backend {name!r}; available: {', '.join(sorted(self._factories))}."
            )
        return name

    def backend(self, name: str | None = None) -> Backend:
        """The connection to one broker (opened, and its server started, on first use)."""
        name = self._backend_name(name)
        if name not in self._backends:
            self._backends[name] = self._factories[name]()
        return self._backends[name]

    def listen(self, topic: str, *, backend: str | None = None, decoder: Decoder = decode_payload,
               **options: Any) -> EventCapture:
        """Start capturing ``topic`` now; returns once the broker confirmed the subscription.

        Backends: "nats" (subject, wildcards allowed), "jetstream" (a subject stored by a stream;
        ``stream=`` optional), "rabbitmq" (a routing key on ``exchange=`` (default "amq.topic")),
        "redis" (a pub/sub channel), "redis-stream" (a stream key). Listening twice returns the same capture.
        """
        name = self._backend_name(backend)
        key = (name, topic)
        if key in self._captures:
            return self._captures[key]
        be = self.backend(name)
        capture = EventCapture(topic, name, be.source, decoder=decoder, diagnose=getattr(be, "diagnose", None))
        be.subscribe(capture, **options)
        self._captures[key] = capture
        return capture

    def capture(self, topic: str, backend: str | None = None, *, api: str = "expect") -> EventCapture:
        """The capture listening to ``topic``; a clear error when there is none."""
        if backend is not None:
            found = self._captures.get((self._backend_name(backend), topic))
            candidates = [found] if found else []
        else:
            candidates = [c for (_, t), c in self._captures.items() if t == topic]
        if len(candidates) == 1:
            return candidates[0]
        if len(candidates) > 1:
            raise EventsUsageError(
                f"events.{api}({topic!r}): listened to on several backends "
                f"({', '.join(c.backend for c in candidates)}); pass backend=."
            )
        listened = ", ".join(f"{t!r} ({b})" for b, t in self._captures) or "nothing"
        hint = backend or self.default_backend or "nats"
        raise EventsUsageError(
            f"events.{api}({topic!r}): nothing listens to {topic!r} (listening to: {listened}). Call "
            f"events.listen({topic!r}, backend={hint!r}) before the action that publishes: listening afterwards "
            "would race with the publisher and miss messages."
        )

    def expect(self, topic: str, match: Matcher = None, timeout: float = 5.0, *,
               backend: str | None = None) -> Any:
        """Wait for the first message on ``topic`` matching ``match``; return its decoded payload."""
        __tracebackhide__ = True
        return self.capture(topic, backend).expect(match, timeout)

    def expect_message(self, topic: str, match: Matcher = None, timeout: float = 5.0, *,
                       backend: str | None = None) -> CapturedMessage:
        """Like expect, but the whole message: payload, raw bytes, headers, actual topic."""
        __tracebackhide__ = True
        return self.capture(topic, backend, api="expect_message").expect_message(match, timeout)

    def expect_count(self, topic: str, count: int, match: Matcher = None, timeout: float = 5.0,
                     within: float = 0.0, *, backend: str | None = None) -> list[CapturedMessage]:
        """Wait until exactly ``count`` matching messages arrived (and, with ``within``, no more follow)."""
        __tracebackhide__ = True
        return self.capture(topic, backend, api="expect_count").expect_count(count, match, timeout, within)

    def assert_none(self, topic: str, match: Matcher = None, within: float = 0.5, *,
                    backend: str | None = None) -> None:
        """Fail if a message matching ``match`` arrives on ``topic`` within ``within`` seconds."""
        __tracebackhide__ = True
        self.capture(topic, backend, api="assert_none").assert_none(match, within)

    # -- for async tests: the same waits, awaited, so the code under test keeps running in the loop --------
    async def expect_async(self, topic: str, match: Matcher = None, timeout: float = 5.0, *,
                           backend: str | None = None) -> Any:
        """``await events.expect_async(...)``: expect() without blocking the test's event loop."""
        __tracebackhide__ = True
        capture = self.capture(topic, backend, api="expect_async")
        return await asyncio.to_thread(capture.expect, match, timeout)

    async def expect_message_async(self, topic: str, match: Matcher = None, timeout: float = 5.0, *,
                                   backend: str | None = None) -> CapturedMessage:
        """``await events.expect_message_async(...)``."""
        __tracebackhide__ = True
        capture = self.capture(topic, backend, api="expect_message_async")
        return await asyncio.to_thread(capture.expect_message, match, timeout)

    async def expect_count_async(self, topic: str, count: int, match: Matcher = None, timeout: float = 5.0,
                                 within: float = 0.0, *, backend: str | None = None) -> list[CapturedMessage]:
        """``await events.expect_count_async(...)``."""
        __tracebackhide__ = True
        capture = self.capture(topic, backend, api="expect_count_async")
        return await asyncio.to_thread(capture.expect_count, count, match, timeout, within)

    async def assert_none_async(self, topic: str, match: Matcher = None, within: float = 0.5, *,
                                backend: str | None = None) -> None:
        """``await events.assert_none_async(...)``."""
        __tracebackhide__ = True
        capture = self.capture(topic, backend, api="assert_none_async")
        await asyncio.to_thread(capture.assert_none, match, within)

    def messages(self, topic: str, *, backend: str | None = None) -> list[CapturedMessage]:
        """Every message captured on ``topic`` so far."""
        return self.capture(topic, backend, api="messages").messages

    def publish(self, topic: str, payload: Any, *, backend: str | None = None,
                headers: Mapping[str, str] | None = None, **options: Any) -> Any:
        """Publish a message (bytes as-is, str as UTF-8, else JSON) through the same broker connection.

        Returns the broker's acknowledgement where there is one (JetStream's PubAck). RabbitMQ takes
        ``exchange=`` and AMQP properties (``message_id=``, ``correlation_id=``...).
        """
        return self.backend(backend).publish(topic, encode_payload(payload), headers, **options)

    async def publish_async(self, topic: str, payload: Any, *, backend: str | None = None,
                            headers: Mapping[str, str] | None = None, **options: Any) -> Any:
        """``publish`` for async tests: the broker round trip runs off the event loop, so the application's
        consumers on that loop keep running meanwhile."""
        be = self.backend(backend)  # opened here: opening may start the server through pytest's fixtures
        return await asyncio.to_thread(be.publish, topic, encode_payload(payload), headers, **options)

    def inject(self, topic: str, messages: Iterable[Any], *, duplicates: int = 1,
               order: str | Sequence[int] = "reversed", seed: int | None = None, backend: str | None = None,
               headers: Mapping[str, str] | Callable[[Any], Mapping[str, str]] | None = None,
               **options: Any) -> Injection:
        """Publish ``messages`` with duplicates (same bytes, same headers, so the same id) and out of order.

        Every message is published ``1 + duplicates`` times; ``order`` is "reversed" (default), "shuffled"
        (seeded; the seed is in the returned Injection), "as-given" or a list of indexes. ``headers`` may be
        a function of the message (``lambda m: {"Message-Id": m["eventId"]}``).
        """
        return publish_injection(self.backend(backend), topic, list(messages), duplicates=duplicates, order=order,
                                 seed=seed, headers=headers, **options)

    def consume(self, topic: str, handler: Callable[[Delivery], Any], *, backend: str | None = None,
                faults: FaultPlan = (), max_deliver: int = DEFAULT_MAX_DELIVER,
                redeliver_after: float = DEFAULT_REDELIVER_AFTER, decoder: Decoder = decode_payload,
                **options: Any) -> FaultyConsumer:
        """A test consumer running ``handler(delivery)`` for every message on ``topic``, which acknowledges,
        fails or crashes before acknowledging as ``faults`` plans, so the broker redelivers.

        Backends: "jetstream" (``stream=``), "rabbitmq" (``queue=`` or ``exchange=``), "redis-stream"
        (``group=``). ``faults``: a list of "ack" / "fail-before-ack" / "crash-before-ack", one per delivery
        in the order they arrive (then "ack"), or a function of the Delivery. Wait with
        ``consumer.wait_acked(n)``; ``consumer.deliveries`` says what happened to each delivery.
        """
        name = self._backend_name(backend)
        kind = BACKENDS.get(name)
        if kind is None or kind.consume is None:
            hint = kind.no_consumer_hint if kind is not None and kind.no_consumer_hint else "no test consumer for it"
            raise EventsUsageError(f"events.consume({topic!r}, backend={name!r}): {hint}.")
        be = self.backend(name)
        consumer = kind.consume(be.url, topic, handler, faults=faults, max_deliver=max_deliver,
                                redeliver_after=redeliver_after, decoder=decoder,
                                diagnose=getattr(be, "diagnose", None), **options)
        self._consumers.append(consumer)
        return consumer

    def name(self, base: str, sep: str = ".") -> str:
        """A topic/queue/stream name unique to this xdist worker and this test (see events.names)."""
        return names.scoped_name(base, worker=self.worker, nodeid=self.nodeid, sep=sep)

    def close(self) -> None:
        """Stop the test consumers, unsubscribe everything and close every broker connection."""
        consumers, self._consumers = self._consumers, []
        backends, self._backends = self._backends, {}
        self._captures.clear()
        errors: list[BaseException] = []
        for consumer in consumers:
            try:
                consumer.close()
            except Exception as exc:
                errors.append(exc)
        for be in backends.values():
            try:
                be.close()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
