"""Boundary: events. The producer's real bytes, captured from the real broker, checked against the event's
JSON Schema and run through the consumer's decoder, including older and newer versions of the event."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from factories import ProductFactory, UserFactory
from orders.events import IncompatibleEvent, OrderCreated, decode_order_created

pytestmark = pytest.mark.boundary("events")

SCHEMA = json.loads((Path(__file__).parents[1] / "orders" / "schemas" / "order_created.json").read_text())


@pytest.fixture
def published(client, order_created, db_session):  # type: ignore[no-untyped-def]
    UserFactory.create(id="user-42")
    ProductFactory.create(id="prod-99")
    r = client.post("/orders", json={"userId": "user-42", "productId": "prod-99", "quantity": 2})
    assert r.status_code == 201
    return order_created.expect_message(match={"orderId": r.json()["orderId"]}, timeout=5)


def test_event_matches_its_json_schema(published):  # type: ignore[no-untyped-def]
    jsonschema.validate(json.loads(published.raw), SCHEMA, format_checker=jsonschema.FormatChecker())


def test_consumer_decodes_what_the_producer_really_sent(published):  # type: ignore[no-untyped-def]
    event = decode_order_created(published.raw)
    assert event == OrderCreated(order_id=json.loads(published.raw)["orderId"], user_id="user-42",
                                 product_id="prod-99", quantity=2, amount=5000)
    assert published.headers.get("schema-version") == "1"


def test_a_newer_producer_adding_fields_does_not_break_the_consumer(published):  # type: ignore[no-untyped-def]
    newer = {**json.loads(published.raw), "currency": "USD", "channel": "web"}
    assert decode_order_created(json.dumps(newer).encode()).amount == 5000


def test_an_older_producer_without_amount_breaks_the_consumer_in_ci(published):  # type: ignore[no-untyped-def]
    older = {k: v for k, v in json.loads(published.raw).items() if k != "amount"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(older, SCHEMA)
    with pytest.raises(IncompatibleEvent, match="amount"):
        decode_order_created(json.dumps(older).encode())
