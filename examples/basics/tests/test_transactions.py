"""Transactional behaviour that rollback isolation cannot test: code that commits on its own connections.

Each test runs twice: with "truncate" (the tables written are emptied and reloaded afterwards) and with
"clone" (a fresh database per test).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from factories import CustomerFactory, ProductFactory
from shop import Order, OutOfStock, Product, place_order, place_order_then_fail
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session

pytestmark = pytest.mark.parametrize(
    "isolation", [pytest.param("truncate", marks=pytest.mark.testbed(isolation="truncate")),
                  pytest.param("clone", marks=pytest.mark.testbed(isolation="clone"))]
)


@pytest.fixture
def app_engine(db_url: str) -> Iterator[Engine]:
    """The application's own engine and pool, as in production."""
    engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1), pool_size=5)
    yield engine
    engine.dispose()  # or testbed's leak check fails the test


def test_failure_after_two_writes_rolls_back_both(isolation, db_session, app_engine):
    customer = CustomerFactory.create()
    ProductFactory.create(sku="mug", stock=5)

    with Session(app_engine) as session, pytest.raises(DataError, match="division by zero"):
        place_order_then_fail(session, customer.id, "mug")

    with Session(app_engine) as session:
        assert session.scalar(select(Product.stock).where(Product.sku == "mug")) == 5
        assert session.scalar(select(func.count()).select_from(Order)) == 0


def test_two_concurrent_orders_for_the_last_unit_exactly_one_wins(isolation, db_session, app_engine):
    customer_id = CustomerFactory.create().id  # read once: the threads must not share db_session
    ProductFactory.create(sku="last-one", stock=1)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def buy() -> None:
        with Session(app_engine) as session:
            barrier.wait(timeout=10)
            try:
                place_order(session, customer_id, "last-one", 1)
                outcomes.append("ok")
            except OutOfStock:
                outcomes.append("out of stock")

    threads = [threading.Thread(target=buy) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    assert sorted(outcomes) == ["ok", "out of stock"]
    with Session(app_engine) as session:
        assert session.scalar(select(Product.stock).where(Product.sku == "last-one")) == 0
        assert session.scalar(select(func.count()).select_from(Order)) == 1


def test_ids_restart_for_every_test(isolation, db_session, app_engine):
    # Committed rows of the previous tests are gone and their sequences reset.
    assert CustomerFactory.create().id == 1
