"""Boundary: the repository against the real PostgreSQL (rollback isolation: it works on the session)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from factories import OrderFactory, ProductFactory, UserFactory
from orders.db import InsufficientStock, Order, Product, create_order, lifetime_value
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

pytestmark = [pytest.mark.boundary("repository"), pytest.mark.testbed(isolation="rollback")]


def test_lifetime_value_is_exact_zero_for_a_customer_without_orders(db_session):
    UserFactory.create(id="sam")
    value = lifetime_value(db_session, "sam")
    assert value == Decimal("0.00") and str(value) == "0.00"


def test_lifetime_value_sums_decimal_amounts(db_session):
    kim = UserFactory.create(id="kim")
    OrderFactory.create(user_id=kim.id, amount=Decimal("0.10"))
    OrderFactory.create(user_id=kim.id, amount=Decimal("0.20"))
    assert lifetime_value(db_session, "kim") == Decimal("0.30")  # not 0.30000000000000004


def test_create_order_decrements_stock_in_the_same_transaction(db_session):
    user = UserFactory.create()
    product = ProductFactory.create(stock=3)
    order = create_order(db_session, user_id=user.id, product_id=product.id, quantity=2,
                         amount=Decimal("50.00"), payment_id="p")
    db_session.commit()
    db_session.expire_all()
    assert db_session.get(Product, product.id).stock == 1
    assert db_session.get(Order, order.id).status == "confirmed"


def test_create_order_refuses_more_than_in_stock(db_session):
    user = UserFactory.create()
    product = ProductFactory.create(stock=1)
    with pytest.raises(InsufficientStock):
        create_order(db_session, user_id=user.id, product_id=product.id, quantity=2,
                     amount=Decimal("1.00"), payment_id="p")


def test_stock_can_never_go_negative(db_session):
    product = ProductFactory.create(stock=0)
    product.stock = -1
    with pytest.raises(IntegrityError, match="stock_never_negative"):
        db_session.flush()


def test_created_at_is_timestamptz_and_round_trips_as_the_same_instant(db_session):
    placed = datetime(2026, 1, 31, 23, 30, tzinfo=timezone(timedelta(hours=-8)))
    order = OrderFactory.create(created_at=placed)
    db_session.expire_all()
    stored = db_session.scalar(select(Order.created_at).where(Order.id == order.id))
    assert stored == placed and stored.astimezone(UTC).day == 1  # next day in UTC
