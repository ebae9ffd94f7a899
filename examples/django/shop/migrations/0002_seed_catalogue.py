"""A data migration: the catalogue every environment starts with (transactional tests must keep it)."""

from decimal import Decimal

from django.db import migrations


def seed(apps, schema_editor):  # type: ignore[no-untyped-def]
    Product = apps.get_model("shop", "Product")
    Product.objects.create(sku="mug", price=Decimal("9.50"), stock=3)
    Product.objects.create(sku="tee", price=Decimal("20.00"), stock=10)


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
