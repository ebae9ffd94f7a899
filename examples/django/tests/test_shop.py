"""pytest-django's markers on testbed's databases: each test starts from the migrated template."""

from __future__ import annotations

from decimal import Decimal

import pytest
from analytics.models import Event
from django.db import IntegrityError, connection, transaction
from shop.models import SENT, Order, Product, place_order


@pytest.mark.django_db
def test_the_data_migration_seeded_the_catalogue() -> None:
    assert {p.sku: p.stock for p in Product.objects.all()} == {"mug": 3, "tee": 10}


@pytest.mark.django_db
def test_an_order_decrements_the_stock_and_is_rolled_back_after_the_test() -> None:
    order = place_order("mug", 2)
    assert order.total == Decimal("19.00")
    assert Product.objects.get(sku="mug").stock == 1


@pytest.mark.django_db
def test_stock_can_never_go_negative() -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        place_order("mug", 4)


@pytest.mark.django_db
def test_on_commit_behaves_as_in_djangos_testcase(django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        order = place_order("tee", 1)
    assert len(callbacks) == 1 and SENT[-1] == order.pk


@pytest.mark.django_db(transaction=True)
def test_transactional_commits_for_real() -> None:
    place_order("tee", 3)  # committed: the app's own transaction, as in production
    assert Order.objects.count() == 1
    assert not connection.in_atomic_block


@pytest.mark.django_db(transaction=True)
def test_after_a_transactional_test_the_seeds_are_back() -> None:
    # testbed truncated only the tables the previous test wrote, and reloaded the migration-seeded rows
    assert Order.objects.count() == 0
    assert Product.objects.get(sku="tee").stock == 10


@pytest.mark.django_db(databases=["default", "analytics"])
def test_two_aliases_each_on_a_database_of_its_own() -> None:
    Event.objects.create(name="viewed")
    assert Event.objects.using("analytics").count() == 1
    from django.db import connections

    assert connections["analytics"].settings_dict["NAME"] != connections["default"].settings_dict["NAME"]


def test_plain_psycopg_beside_django(testbed_db) -> None:  # type: ignore[no-untyped-def]
    # testbed's own connection fixture keeps working under the name pytest-django does not use
    assert testbed_db.execute("select count(*) from shop_product").fetchone() == (2,)
