"""The README's "Capturing events" example, verbatim: if this file breaks, so does the README."""

from __future__ import annotations

import asyncio
import json

import nats
import pytest

from testbed.events import JsonSchema


def place_order(nats_url: str, order_id: str) -> None:  # the code under test
    async def publish() -> None:
        nc = await nats.connect(nats_url)
        body = json.dumps({"orderId": order_id, "amount": 5000}).encode()
        await nc.publish("orders.created", body, headers={"schema": "order/v2"})
        await nc.close()

    asyncio.run(publish())


def test_placing_an_order_publishes_orders_created(events, nats_url):  # type: ignore[no-untyped-def]
    events.listen("orders.created")  # subscribe BEFORE the action
    events.listen("orders.cancelled")

    place_order(nats_url, "o-42")

    event = events.expect("orders.created", match={"orderId": "o-42"}, timeout=5)
    assert event["amount"] == 5000
    msg = events.expect_message("orders.created", match=JsonSchema({"required": ["orderId", "amount"]}))
    assert msg.headers["schema"] == "order/v2" and json.loads(msg.raw) == event  # what the consumer decodes
    events.assert_none("orders.cancelled", within=0.2)


def test_the_cache_starts_empty(redis, redis_url):  # type: ignore[no-untyped-def]
    assert redis.get("user:42") is None  # whatever another test cached is gone
    redis.set("user:42", "Sam")


@pytest.mark.testbed_events("orders.created", backend="rabbitmq")
def test_the_marker_listens_before_the_test_body_runs(events, rabbitmq_connection):  # type: ignore[no-untyped-def]
    rabbitmq_connection.channel().basic_publish("amq.topic", "orders.created", b'{"orderId": "o-9"}')
    assert events.expect("orders.created", match={"orderId": "o-9"}) == {"orderId": "o-9"}


def test_nats_fixture_is_this_workers_account(nats, nats_url):  # type: ignore[no-untyped-def]
    assert nats.url == nats_url
    nats.jetstream_api("STREAM.CREATE.AUDIT", {"name": "AUDIT", "subjects": ["audit.>"], "storage": "memory"})
    assert "AUDIT" in nats.stream_names()  # and gone after the test: nats_url's reset
