"""What only a real PostgreSQL catches: NULL aggregates, Decimal and timestamptz round-trips.

These run with rollback isolation (the project default): each test's writes vanish afterwards, even
though factories commit.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from factories import CustomerFactory, OrderFactory, ProductFactory
from shop import Order, Product, lifetime_values
from sqlalchemy import select, text


def test_lifetime_value_is_zero_not_null_without_orders(db_session):
    sam = CustomerFactory.create(name="Sam")
    kim = CustomerFactory.create(name="Kim")
    OrderFactory.create(customer_id=kim.id, total=Decimal("12.50"))
    OrderFactory.create(customer_id=kim.id, total=Decimal("0.05"))

    values = lifetime_values(db_session)

    # LEFT JOIN + SUM over no rows is NULL in SQL; the repository must turn it into an exact 0.00.
    assert values == {sam.id: Decimal("0.00"), kim.id: Decimal("12.55")}
    assert type(values[sam.id]) is Decimal and str(values[sam.id]) == "0.00"


def test_numeric_price_and_discount_round_trip_as_decimal(db_session):
    ProductFactory.create(sku="lamp", price=Decimal("100.00"), discount=Decimal("0.15"))
    db_session.expire_all()  # read back from the database, not from the identity map

    lamp = db_session.execute(select(Product).where(Product.sku == "lamp")).scalar_one()

    assert lamp.price == Decimal("100.00") and str(lamp.price) == "100.00"
    assert lamp.discount == Decimal("0.15")
    assert lamp.discounted_price == Decimal("85.00")


def test_timestamptz_comes_back_as_the_same_utc_instant(db_session):
    # 09:30 in UTC-05:00 is 14:30 UTC; the session's own time zone must not shift the instant.
    placed = datetime(2026, 3, 8, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=-5)))
    db_session.execute(text("SET TIME ZONE 'Asia/Kolkata'"))
    order = OrderFactory.create(placed_at=placed)
    db_session.expire_all()

    stored = db_session.execute(select(Order.placed_at).where(Order.id == order.id)).scalar_one()

    assert stored == placed
    assert stored.astimezone(UTC) == datetime(2026, 3, 8, 14, 30, 15, 123456, tzinfo=UTC)


def test_db_fixture_sees_rows_from_db_session(db_session, db):
    CustomerFactory.create(name="shared transaction")
    assert db.execute("SELECT name FROM customers").fetchall() == [("shared transaction",)]


def test_each_test_starts_from_the_migrated_template(db):
    assert db.execute("SELECT count(*) FROM customers").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM order_statuses").fetchone() == (3,)  # seeded by migrations
