"""Redeliveries and duplicates on real brokers: the test consumer fails or crashes before acknowledging, the
injector publishes the same messages twice and out of order. Each planted bug (a consumer that is not
idempotent, one that assumes order) is caught; the fixed consumer passes the same test."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

import testbed.events
from testbed.events import Delivery, EventsUsageError, EventTimeoutError, InjectionError

STREAM = "TESTBED_REDELIVERY"
REDELIVERY_BACKENDS = ["jetstream", "rabbitmq", "redis-stream"]


@pytest.fixture(params=REDELIVERY_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def topic(events: Any, backend: str, request: pytest.FixtureRequest) -> str:
    """A topic of this test on the backend (JetStream: a subject of a stream the test creates)."""
    name = events.name("payments")
    if backend != "jetstream":
        return name
    request.getfixturevalue("nats_url")  # streams the test creates go after it
    server = request.getfixturevalue("testbed_nats_server")
    server.jetstream_api(f"STREAM.CREATE.{STREAM}", {"name": STREAM, "subjects": ["js.>"], "storage": "memory"})
    return f"js.{name}"


class Ledger:
    """The application's side effect: a balance credited once per payment."""

    def __init__(self) -> None:
        self.balance = 0
        self.seen: set[str] = set()
        self.lock = threading.Lock()

    def credit_not_idempotent(self, delivery: Delivery) -> None:  # the planted bug
        self.balance += delivery.payload["amount"]

    def credit_idempotent(self, delivery: Delivery) -> None:  # the fix: remember what was applied
        with self.lock:
            if delivery.payload["paymentId"] in self.seen:
                return
            self.seen.add(delivery.payload["paymentId"])
            self.balance += delivery.payload["amount"]


def balance_after_one_payment(events: Any, backend: str, topic: str, handler: Callable[[Delivery], None],
                              fault: str) -> list[Delivery]:
    """The test a team would write: one payment of 100, delivered again after a failure, credits 100."""
    consumer = events.consume(topic, handler, backend=backend, faults=[fault], redeliver_after=0.5)
    events.publish(topic, {"paymentId": "p-1", "amount": 100}, backend=backend)
    consumer.wait_acked(1, timeout=30)
    return consumer.deliveries


@pytest.mark.parametrize("fault", ["fail-before-ack", "crash-before-ack"])
def test_a_redelivery_catches_a_consumer_that_is_not_idempotent(events: Any, backend: str, topic: str,
                                                               fault: str) -> None:
    ledger = Ledger()
    deliveries = balance_after_one_payment(events, backend, topic, ledger.credit_not_idempotent, fault)
    assert ledger.balance == 200  # the bug, every run: the handler ran twice for one payment
    first, second = deliveries
    assert (first.index, first.num_delivered, first.redelivered) == (1, 1, False)
    assert (first.action, first.planned) == (fault, True)
    assert (second.index, second.num_delivered, second.redelivered, second.action) == (2, 2, True, "ack")
    assert first.message_id == second.message_id  # the broker redelivered the same stored message
    assert second.payload == {"paymentId": "p-1", "amount": 100}


@pytest.mark.parametrize("fault", ["fail-before-ack", "crash-before-ack"])
def test_the_idempotent_consumer_passes_the_same_test(events: Any, backend: str, topic: str, fault: str) -> None:
    ledger = Ledger()
    deliveries = balance_after_one_payment(events, backend, topic, ledger.credit_idempotent, fault)
    assert ledger.balance == 100
    assert [d.action for d in deliveries] == [fault, "ack"]


def test_a_handler_that_raises_is_negatively_acknowledged_and_retried(events: Any, backend: str, topic: str) -> None:
    calls: list[int] = []

    def flaky(delivery: Delivery) -> None:
        calls.append(delivery.num_delivered)
        if len(calls) == 1:
            raise ConnectionError("the ledger service is down")

    consumer = events.consume(topic, flaky, backend=backend)
    events.publish(topic, {"paymentId": "p-2", "amount": 5}, backend=backend)
    consumer.wait_acked(1, timeout=30)
    first, second = consumer.deliveries
    assert (first.action, first.planned) == ("fail-before-ack", False)
    assert "ConnectionError: the ledger service is down" in first.error
    assert (second.action, second.num_delivered) == ("ack", 2)


def test_a_message_that_always_fails_is_given_up_and_the_wait_fails_at_once(events: Any, backend: str,
                                                                           topic: str) -> None:
    def broken(delivery: Delivery) -> None:
        raise ValueError(f"cannot parse {delivery.payload}")

    consumer = events.consume(topic, broken, backend=backend, max_deliver=3)
    events.publish(topic, {"paymentId": "p-3"}, backend=backend)
    with pytest.raises(EventTimeoutError) as info:
        consumer.wait_acked(1, timeout=60)
    text = str(info.value)
    assert f"the consumer on {topic!r} gave up a message after 3 deliveries (#3)" in text
    assert "#1 delivery 1" in text and "-> fail-before-ack" in text and "#3 delivery 3, redelivered" in text
    assert "handler raised: ValueError: cannot parse {'paymentId': 'p-3'}" in text
    assert [d.action for d in consumer.deliveries] == ["fail-before-ack", "fail-before-ack", "dead-letter"]


def test_a_plan_as_a_function_crashes_every_first_delivery(events: Any, backend: str, topic: str) -> None:
    ledger = Ledger()
    consumer = events.consume(topic, ledger.credit_idempotent, backend=backend, redeliver_after=0.5,
                              faults=lambda d: "ack" if d.redelivered else "crash-before-ack")
    for n in (1, 2):
        events.publish(topic, {"paymentId": f"p-{n}", "amount": n}, backend=backend)
    consumer.wait_acked(2, timeout=30)
    assert ledger.balance == 3
    # (Redis may read p-2 before p-1 has been idle long enough to be claimed: order across messages varies)
    for payment in ("p-1", "p-2"):
        assert [d.action for d in consumer.deliveries if d.payload["paymentId"] == payment] == [
            "crash-before-ack", "ack"]


# -- duplicates and disorder ---------------------------------------------------------------------------

STATUSES = ["created", "paid", "shipped"]


class StatusProjection:
    """The order's status as a read model kept from status events."""

    def __init__(self) -> None:
        self.status = ""
        self.applied = 0

    def last_event_wins(self, delivery: Delivery) -> None:  # the planted bug: assumes order, counts duplicates
        self.status = delivery.payload["status"]
        self.applied += 1

    def only_forward(self, delivery: Delivery) -> None:  # the fix: a status never goes back; a repeat is a no-op
        new = delivery.payload["status"]
        if not self.status or STATUSES.index(new) > STATUSES.index(self.status):
            self.status = new
            self.applied += 1


def projected(events: Any, backend: str, topic: str, handler: Callable[[Delivery], None]) -> Any:
    consumer = events.consume(topic, handler, backend=backend)
    injection = events.inject(topic, [{"orderId": "o-1", "status": s} for s in STATUSES], backend=backend)
    consumer.wait_acked(len(injection.sequence), timeout=30)
    return injection


def test_duplicates_out_of_order_catch_an_order_assuming_consumer(events: Any, backend: str, topic: str) -> None:
    view = StatusProjection()
    injection = projected(events, backend, topic, view.last_event_wins)
    assert injection.sequence == (2, 1, 0, 2, 1, 0)  # shipped, paid, created, then each again
    assert (view.status, view.applied) == ("created", 6)  # wrong status, six updates for three events


def test_the_order_tolerant_consumer_passes(events: Any, backend: str, topic: str) -> None:
    view = StatusProjection()
    projected(events, backend, topic, view.only_forward)
    assert (view.status, view.applied) == ("shipped", 1)


def test_every_copy_carries_the_same_bytes_and_headers(events: Any, backend: str, topic: str) -> None:
    consumer = events.consume(topic, lambda d: None, backend=backend)
    events.inject(topic, [{"eventId": "e-1"}, {"eventId": "e-2"}], order="shuffled", seed=7, backend=backend,
                  headers=lambda m: {"Event-Id": m["eventId"]})
    acked = consumer.wait_acked(4, timeout=30)
    assert sorted((d.raw, d.headers["Event-Id"]) for d in acked) == [
        (b'{"eventId": "e-1"}', "e-1"), (b'{"eventId": "e-1"}', "e-1"),
        (b'{"eventId": "e-2"}', "e-2"), (b'{"eventId": "e-2"}', "e-2")]
    assert [d.payload["eventId"] for d in acked] != ["e-1", "e-2", "e-1", "e-2"]  # shuffled, never as given


# -- one broker each ---------------------------------------------------------------------------------

def test_jetstream_would_drop_a_duplicate_with_the_same_msg_id_so_inject_refuses(events: Any,
                                                                                testbed_nats_server: Any,
                                                                                nats_url: str) -> None:
    testbed_nats_server.jetstream_api(f"STREAM.CREATE.{STREAM}", {"name": STREAM, "subjects": ["js.>"],
                                                                  "storage": "memory"})
    with pytest.raises(InjectionError, match="JetStream dropped publish #2 .message 0. as a duplicate"):
        events.inject("js.dedup", [{"eventId": "e-1"}], backend="jetstream", headers={"Nats-Msg-Id": "e-1"})


def test_core_nats_and_redis_pubsub_have_no_acknowledgements(events: Any) -> None:
    with pytest.raises(EventsUsageError, match="core NATS delivers each message at most once.*use 'jetstream'"):
        events.consume("x", lambda d: None, backend="nats")
    with pytest.raises(EventsUsageError, match="Redis pub/sub .*use 'redis-stream'"):
        events.consume("x", lambda d: None, backend="redis")


def test_an_unknown_fault_is_refused_before_anything_is_consumed(events: Any, redis_url: str) -> None:
    with pytest.raises(testbed.events.ConsumerUsageError, match="unknown fault 'crash'"):
        events.consume("x", lambda d: None, backend="redis-stream", faults=["crash"])
    with pytest.raises(testbed.events.ConsumerUsageError, match="give a list of actions"):
        events.consume("x", lambda d: None, backend="redis-stream", faults="crash-before-ack")


def test_the_library_and_the_async_helper_without_the_fixture(redis_url: str) -> None:
    ledger = Ledger()
    with testbed.events.consume(redis_url, "payments", ledger.credit_not_idempotent, backend="redis-stream",
                                faults=["crash-before-ack"], redeliver_after=0.3) as consumer:
        asyncio.run(testbed.events.publish_async(redis_url, "payments", {"paymentId": "p", "amount": 1},
                                                 backend="redis-stream"))
        consumer.wait_acked(1, timeout=30)
    assert ledger.balance == 2
    injection = testbed.events.inject(redis_url, "payments", ["a", "b"], backend="redis-stream", duplicates=0)
    assert injection.sequence == (1, 0)


def test_async_handlers_and_publish_async_in_the_fixture(events: Any, redis_url: str) -> None:
    seen: list[str] = []

    async def handler(delivery: Delivery) -> None:
        await asyncio.sleep(0)
        seen.append(delivery.payload)

    topic = events.name("async")
    consumer = events.consume(topic, handler, backend="redis-stream")

    async def produce() -> None:
        await events.publish_async(topic, "hello", backend="redis-stream")

    asyncio.run(produce())
    consumer.wait_acked(1, timeout=30)
    assert seen == ["hello"]


def test_every_delivery_is_published_to_observers(events: Any, redis_url: str) -> None:
    from testbed import observe

    seen: list[observe.BoundaryEvent] = []
    with observe.listening(seen.append):
        consumer = events.consume("obs", lambda d: None, backend="redis-stream", faults=["fail-before-ack"])
        events.publish("obs", {"n": 1}, backend="redis-stream")
        consumer.wait_acked(1, timeout=30)
    deliveries = [e for e in seen if e.kind == "delivery"]
    assert [(e.boundary, e.data["action"], e.data["num_delivered"]) for e in deliveries] == [
        ("events", "fail-before-ack", 1), ("events", "ack", 2)]
    assert deliveries[0].summary.startswith('obs: #1 delivery 1 id ') and "-> fail-before-ack (planned)" in \
        deliveries[0].summary
