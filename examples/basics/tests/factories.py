"""Test data for the shop, persisted through whatever isolation the test uses."""

from __future__ import annotations

from decimal import Decimal

import factory
from shop import Customer, Order, Product

import testbed.factories


class CustomerFactory(testbed.factories.SQLAlchemyFactory):
    class Meta:
        model = Customer

    name = factory.Sequence(lambda n: f"customer-{n}")


class ProductFactory(testbed.factories.SQLAlchemyFactory):
    class Meta:
        model = Product

    sku = factory.Sequence(lambda n: f"sku-{n}")
    price = Decimal("10.00")
    discount = Decimal("0")
    stock = 10


class OrderFactory(testbed.factories.SQLAlchemyFactory):
    class Meta:
        model = Order

    customer_id = factory.LazyFunction(lambda: CustomerFactory.create().id)
    total = Decimal("25.00")
    status = "confirmed"
