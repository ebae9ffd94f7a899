from decimal import Decimal

from django.db import models, transaction


class Product(models.Model):
    sku = models.CharField(max_length=32, unique=True)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    stock = models.IntegerField()

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(stock__gte=0), name="stock_never_negative")]


class Order(models.Model):
    product = models.ForeignKey(Product, on_delete=models.PROTECT)
    quantity = models.PositiveIntegerField()
    total = models.DecimalField(max_digits=10, decimal_places=2)


SENT: list[int] = []


def place_order(sku: str, quantity: int) -> Order:
    """Decrement the stock and record the order in one transaction; confirm by mail after commit."""
    with transaction.atomic():
        product = Product.objects.select_for_update().get(sku=sku)
        product.stock -= quantity
        product.save()
        order = Order.objects.create(product=product, quantity=quantity, total=product.price * Decimal(quantity))
        transaction.on_commit(lambda: SENT.append(order.pk))
    return order
