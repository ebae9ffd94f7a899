"""EventRecorder's rules that need no broker: listening first, backend choice."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from testbed.events import EventRecorder, EventsUsageError
from testbed.events.capture import EventCapture


class LoopbackBackend:
    """Delivers what is published straight to the captures: the recorder's logic without a broker."""

    name = "loop"
    source = "loop://"

    def __init__(self) -> None:
        self.captures: list[EventCapture] = []
        self.closed = False

    def subscribe(self, capture: EventCapture, **options: Any) -> None:
        self.captures.append(capture)

    def publish(self, topic: str, payload: bytes, headers: Mapping[str, str] | None = None, **options: Any) -> None:
        for c in self.captures:
            if c.topic == topic:
                c.deliver(topic, payload, headers)

    def close(self) -> None:
        self.closed = True


def test_expect_without_listen_is_a_usage_error_that_says_listen_first() -> None:
    rec = EventRecorder({"loop": LoopbackBackend}, default_backend="loop")
    with pytest.raises(EventsUsageError, match=r"nothing listens to 'orders.created'.*events.listen\('orders.created'"):
        rec.expect("orders.created")


def test_listen_then_publish_then_expect_round_trip() -> None:
    rec = EventRecorder({"loop": LoopbackBackend}, default_backend="loop", worker="gw1", nodeid="t.py::test_x")
    topic = rec.name("orders")
    rec.listen(topic)
    rec.publish(topic, {"orderId": "o-1"}, headers={"k": "v"})
    assert rec.expect(topic, {"orderId": "o-1"}, timeout=1) == {"orderId": "o-1"}
    assert rec.expect_message(topic).headers == {"k": "v"}
    assert topic.startswith("orders.gw1.test_x-")
    rec.close()


def test_listen_twice_returns_the_same_capture_and_close_closes_backends() -> None:
    made: list[LoopbackBackend] = []

    def factory() -> LoopbackBackend:
        made.append(LoopbackBackend())
        return made[-1]

    rec = EventRecorder({"loop": factory}, default_backend="loop")
    assert rec.listen("a") is rec.listen("a")
    rec.close()
    assert len(made) == 1 and made[0].closed


def test_unknown_backend_lists_the_available_ones() -> None:
    rec = EventRecorder({"loop": LoopbackBackend, "nats": LoopbackBackend})
    with pytest.raises(EventsUsageError, match="unknown backend 'kafka'; available: loop, nats"):
        rec.listen("a", backend="kafka")
    with pytest.raises(EventsUsageError, match="no backend given"):
        rec.listen("a")


def test_same_topic_on_two_backends_needs_backend_to_expect() -> None:
    rec = EventRecorder({"loop": LoopbackBackend, "other": LoopbackBackend})
    rec.listen("a", backend="loop")
    rec.listen("a", backend="other")
    with pytest.raises(EventsUsageError, match="several backends"):
        rec.expect("a", timeout=0)
    rec.publish("a", "x", backend="other")
    assert rec.expect("a", backend="other", timeout=1) == "x"
