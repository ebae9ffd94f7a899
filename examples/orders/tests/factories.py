"""Test data for the orders service, persisted through the test's isolated session."""

from __future__ import annotations

from decimal import Decimal

import factory
from orders.db import Order, Product, User

import testbed.factories


class UserFactory(testbed.factories.SQLAlchemyFactory):
    class Meta:
        model = User

    id = factory.Sequence(lambda n: f"user-{n}")
    name = factory.Faker("name")


class ProductFactory(testbed.factories.SQLAlchemyFactory):
    class Meta:
        model = Product

    id = factory.Sequence(lambda n: f"prod-{n}")
    name = "Coffee grinder"
    price = Decimal("25.00")
    stock = 10


class OrderFactory(testbed.factories.SQLAlchemyFactory):
    class Meta:
        model = Order

    user_id = factory.LazyFunction(lambda: UserFactory.create().id)
    product_id = factory.LazyFunction(lambda: ProductFactory.create().id)
    quantity = 1
    amount = Decimal("25.00")
    status = "confirmed"
