"""The same capture API on NATS, JetStream, RabbitMQ, Redis pub/sub and Redis streams, on real servers."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from testbed.events import EventsUsageError, EventTimeoutError, JsonSchema

Producer = Callable[[str, bytes, Mapping[str, str]], None]
Topic = Callable[[str], str]


def test_expect_returns_the_decoded_payload_the_producer_published(
    events: Any, backend: str, producer: Producer, make_topic: Topic
) -> None:
    topic = make_topic("orders.created")
    events.listen(topic, backend=backend)
    producer(topic, json.dumps({"orderId": "o-1", "amount": 5000}).encode(), {})
    assert events.expect(topic, match={"orderId": "o-1"}, timeout=10) == {"orderId": "o-1", "amount": 5000}


def test_nothing_published_before_listen_is_ever_seen(
    events: Any, backend: str, producer: Producer, make_topic: Topic
) -> None:
    topic = make_topic("orders.created")
    producer(topic, b'{"n": "stale"}', {})
    events.listen(topic, backend=backend)
    producer(topic, b'{"n": "fresh"}', {})
    events.expect(topic, match={"n": "fresh"}, timeout=10)
    assert [m.payload for m in events.messages(topic)] == [{"n": "fresh"}]


def test_a_timed_out_expect_prints_the_near_misses(
    events: Any, backend: str, producer: Producer, make_topic: Topic
) -> None:
    topic = make_topic("orders.created")
    events.listen(topic, backend=backend)
    producer(topic, b'{"orderId": "o-1", "status": "pending"}', {})
    events.expect(topic, timeout=10)  # it arrived; now ask for something it is not
    with pytest.raises(EventTimeoutError) as info:
        events.expect(topic, match={"orderId": "o-1", "status": "paid"}, timeout=0.2)
    text = str(info.value)
    assert f"no message on {topic!r} ({backend}," in text
    assert "1 message(s) received" in text
    assert "$.status: expected 'paid', got 'pending'" in text


def test_raw_bytes_are_kept_for_the_consumers_decoder(
    events: Any, backend: str, producer: Producer, make_topic: Topic
) -> None:
    topic = make_topic("orders.created")
    events.listen(topic, backend=backend)
    body = b'{"amount":1.10,"orderId":"o-7"}'  # exact bytes: no re-serialisation may change them
    producer(topic, body, {"schema-version": "2"} if backend != "redis" else {})
    msg = events.expect_message(topic, match=JsonSchema({"required": ["orderId", "amount"]}), timeout=10)
    assert msg.raw == body
    assert json.loads(msg.raw) == msg.payload
    if backend != "redis":  # Redis pub/sub has no headers
        assert msg.headers["schema-version"] == "2"


def test_expect_count_and_assert_none(
    events: Any, backend: str, producer: Producer, make_topic: Topic
) -> None:
    topic = make_topic("stock.changed")
    events.listen(topic, backend=backend)
    for sku in ("a", "b", "a"):
        producer(topic, json.dumps({"sku": sku}).encode(), {})
    assert len(events.expect_count(topic, 2, match={"sku": "a"}, timeout=10)) == 2
    events.expect_count(topic, 1, match={"sku": "b"}, timeout=10)
    events.assert_none(topic, match={"sku": "c"}, within=0.05)
    with pytest.raises(EventTimeoutError, match="expected no message"):
        events.assert_none(topic, match={"sku": "b"}, within=0.05)


def test_expect_on_a_topic_nobody_listened_to_is_an_error(events: Any) -> None:
    with pytest.raises(EventsUsageError, match="before the action that publishes"):
        events.expect("never.listened", timeout=0.01)
