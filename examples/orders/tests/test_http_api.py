"""Boundary: the HTTP API, end to end over real sockets (PostgreSQL, payment stub, NATS)."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal

import httpx
import pytest
from factories import ProductFactory, UserFactory
from orders.db import Order, Product
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from testbed.stubs import post

pytestmark = pytest.mark.boundary("http_api")

CHARGE = "/v1/payments/charge"


@pytest.fixture
def user_and_product(db_session: Session) -> tuple[str, str]:
    UserFactory.create(id="user-42")
    ProductFactory.create(id="prod-99", price=Decimal("25.00"), stock=10)
    return "user-42", "prod-99"


def _stock(db_session: Session, product_id: str) -> int:
    db_session.expire_all()
    return db_session.scalar(select(Product.stock).where(Product.id == product_id))


def _order_count(db_session: Session) -> int:
    return db_session.scalar(select(func.count()).select_from(Order))


def test_post_order_the_thirteen_steps(client, http_stub, order_created, db_session, user_and_product):
    # 1-4: PostgreSQL started and migrated (testbed), payment stub approving (mapping file in
    # tests/stubs), user-42 and prod-99 seeded by factories, a listener on the broker (order_created).
    http_stub.stub_for(post(CHARGE).with_json({"userId": "user-42", "amount": 5000}, ignore_extra_elements=True)
                       .will_return(status=200, json={"status": "approved", "paymentId": "pay-1"}))
    # 5: the action
    r = client.post("/orders", json={"userId": "user-42", "productId": "prod-99", "quantity": 2})
    # 6: 201
    assert r.status_code == 201, r.text
    # 7: orderId is a UUID
    order_id = uuid.UUID(r.json()["orderId"])
    # 8: one order row for user-42, status confirmed
    rows = db_session.execute(select(Order).where(Order.user_id == "user-42")).scalars().all()
    assert [(o.id, o.status, o.quantity, o.amount) for o in rows] == [(order_id, "confirmed", 2, Decimal("50.00"))]
    # 9: stock decremented by 2
    assert _stock(db_session, "prod-99") == 8
    # 10-11: OrderCreated published, with the right ids
    event = order_created.expect(match={"orderId": str(order_id), "userId": "user-42", "productId": "prod-99",
                                        "quantity": 2, "amount": 5000}, timeout=5)
    assert event["orderId"] == str(order_id)
    # 12: the payment stub was called exactly once, with the right amount
    http_stub.verify(1, post(CHARGE).with_json({"amount": 5000}, ignore_extra_elements=True))
    # 13: clean-up: the truncate isolation (pyproject) empties what the app committed after the test.


def test_declined_payment_is_402_and_changes_nothing(client, http_stub, order_created, db_session,
                                                     user_and_product):
    http_stub.stub_for(post(CHARGE).will_return(status=200, json={"status": "declined",
                                                                  "reason": "insufficient_funds"}))
    r = client.post("/orders", json={"userId": "user-42", "productId": "prod-99", "quantity": 2})
    assert r.status_code == 402
    assert "insufficient_funds" in r.text
    assert _order_count(db_session) == 0
    assert _stock(db_session, "prod-99") == 10
    order_created.assert_none(within=0.3)


def test_gateway_timeout_is_retried_over_the_socket_then_succeeds(client, http_stub, user_and_product):
    # First attempt: the stub answers after the client's 0.5 s timeout; second attempt: approved.
    http_stub.stub_for(post(CHARGE).will_return(status=200, json={"status": "approved", "paymentId": "slow"})
                       .with_delay(1500).in_scenario("flaky", when="Started", then="recovered"))
    http_stub.stub_for(post(CHARGE).will_return(status=200, json={"status": "approved", "paymentId": "p2"})
                       .in_scenario("flaky", when="recovered"))
    r = client.post("/orders", json={"userId": "user-42", "productId": "prod-99", "quantity": 1})
    assert r.status_code == 201, r.text
    http_stub.verify(2, post(CHARGE))


def test_503_then_success_retries_with_the_same_idempotency_key(client, http_stub, user_and_product):
    http_stub.stub_for(post(CHARGE).will_return(status=503).in_scenario("s", when="Started", then="up"))
    http_stub.stub_for(post(CHARGE).will_return(status=200, json={"status": "approved", "paymentId": "p"})
                       .in_scenario("s", when="up"))
    r = client.post("/orders", json={"userId": "user-42", "productId": "prod-99", "quantity": 1})
    assert r.status_code == 201
    keys = {e.request.header("Idempotency-Key") for e in http_stub.requests}
    assert len(keys) == 1 and keys != {None}
    http_stub.verify(2, post(CHARGE))


def test_gateway_always_timing_out_is_504_and_nothing_written(client, http_stub, db_session, user_and_product):
    http_stub.stub_for(post(CHARGE).will_return(status=200, json={"status": "approved"}).with_delay(1200))
    r = client.post("/orders", json={"userId": "user-42", "productId": "prod-99", "quantity": 1})
    assert r.status_code == 504
    assert _order_count(db_session) == 0
    http_stub.verify(3, post(CHARGE))  # bounded retries, really sent


def test_connection_reset_is_502_and_nothing_written(client, http_stub, order_created, db_session,
                                                      user_and_product):
    http_stub.stub_for(post(CHARGE).will_fault("CONNECTION_RESET_BY_PEER"))
    r = client.post("/orders", json={"userId": "user-42", "productId": "prod-99", "quantity": 1})
    assert r.status_code == 502
    assert _order_count(db_session) == 0
    assert _stock(db_session, "prod-99") == 10
    order_created.assert_none(within=0.3)


@pytest.mark.parametrize("body", [
    {"userId": "user-42", "productId": "prod-99", "quantity": 0},
    {"userId": "user-42", "productId": "prod-99"},
    {"userId": "", "productId": "prod-99", "quantity": 1},
    {"userId": "user-42", "productId": "prod-99", "quantity": "two"},
])
def test_invalid_input_is_422_and_never_charges(client, http_stub, body):
    r = client.post("/orders", json=body)
    assert r.status_code == 422
    http_stub.verify(0, post(CHARGE))


def test_short_stock_is_409_before_charging(client, http_stub, db_session, user_and_product):
    r = client.post("/orders", json={"userId": "user-42", "productId": "prod-99", "quantity": 11})
    assert r.status_code == 409
    http_stub.verify(0, post(CHARGE))


def test_two_concurrent_orders_for_the_last_unit_exactly_one_wins(client, http_stub, db_session):
    UserFactory.create(id="user-42")
    ProductFactory.create(id="last-one", stock=1)
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def order() -> None:
        barrier.wait(timeout=10)
        statuses.append(client.post("/orders", json={"userId": "user-42", "productId": "last-one",
                                                     "quantity": 1}).status_code)

    threads = [threading.Thread(target=order) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(statuses) == [201, 409]
    assert _stock(db_session, "last-one") == 0  # never negative: a CHECK and a conditional UPDATE
    # Both passed the stock pre-check and were charged; the loser's charge was refunded.
    refunds = [e for e in http_stub.requests if e.request.path.endswith("/refund")]
    assert len(refunds) == sorted(statuses).count(409) - (2 - len(http_stub.find(post(CHARGE))))


def test_pool_under_pressure_finishes_or_fails_clearly_and_leaks_nothing(client, http_stub, db_session,
                                                                         user_and_product):
    # 12 concurrent requests against a pool of 3 slots: each finishes (201/409) or fails with 503.
    http_stub.stub_for(post(CHARGE).will_return(status=200, json={"status": "approved", "paymentId": "p"})
                       .with_delay(50))
    results: list[int] = []
    lock = threading.Lock()

    def order() -> None:
        code = client.post("/orders", json={"userId": "user-42", "productId": "prod-99", "quantity": 1}).status_code
        with lock:
            results.append(code)

    threads = [threading.Thread(target=order) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 12
    assert set(results) <= {201, 409, 503}
    assert results.count(201) == 10 - _stock(db_session, "prod-99")
    # testbed's leak check (after this test) proves the app's pool gave every connection back.


def test_get_order_round_trips_decimal_and_utc(client, http_stub, user_and_product):
    r = client.post("/orders", json={"userId": "user-42", "productId": "prod-99", "quantity": 3})
    order = client.get(f"/orders/{r.json()['orderId']}").json()
    assert order["amount"] == "75.00"
    assert order["createdAt"].endswith("+00:00")


def test_lifetime_value_is_0_00_without_orders(client, db_session):
    UserFactory.create(id="user-7")
    assert client.get("/customers/user-7/lifetime-value").json() == {"customerId": "user-7",
                                                                     "lifetimeValue": "0.00"}
    assert client.get("/customers/nobody/lifetime-value").status_code == 404


def test_unknown_product_is_404(client, db_session):
    UserFactory.create(id="user-42")
    assert client.post("/orders", json={"userId": "user-42", "productId": "nope", "quantity": 1}).status_code == 404


def test_http_client_is_real(client):
    with pytest.raises(httpx.HTTPError):
        httpx.get(client.base_url.copy_with(port=1).join("/"), timeout=0.5)
