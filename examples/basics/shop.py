"""A small shop's data layer: the code the example tests exercise against a real PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Numeric, String, func, select, text, update
from sqlalchemy.dialects.postgresql import TIMESTAMP
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


class Product(Base):
    __tablename__ = "products"
    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String, unique=True)
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    discount: Mapped[Decimal] = mapped_column(Numeric(4, 2), default=Decimal("0"))
    stock: Mapped[int]

    @property
    def discounted_price(self) -> Decimal:
        return (self.price * (1 - self.discount)).quantize(Decimal("0.01"))


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"))
    total: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    placed_at: Mapped[datetime] = mapped_column(TIMESTAMP(timezone=True), server_default=func.now())
    status: Mapped[str] = mapped_column(default="pending")


def lifetime_values(session: Session) -> dict[int, Decimal]:
    """Total spent per customer, 0.00 for customers without orders (SUM over no rows is NULL)."""
    rows = session.execute(
        select(Customer.id, func.coalesce(func.sum(Order.total), Decimal("0.00")).cast(Numeric(12, 2)))
        .outerjoin(Order, Order.customer_id == Customer.id)
        .group_by(Customer.id)
        .order_by(Customer.id)
    )
    return {cid: value for cid, value in rows}


class OutOfStock(Exception):
    pass


def place_order(session: Session, customer_id: int, sku: str, quantity: int) -> Order:
    """Decrement stock and create the order in one transaction; commits. Raises OutOfStock."""
    product = session.execute(select(Product).where(Product.sku == sku).with_for_update()).scalar_one()
    if product.stock < quantity:
        session.rollback()
        raise OutOfStock(sku)
    product.stock -= quantity
    order = Order(customer_id=customer_id, product_id=product.id, total=product.discounted_price * quantity,
                  status="confirmed")
    session.add(order)
    session.commit()
    return order


def place_order_then_fail(session: Session, customer_id: int, sku: str) -> None:
    """A service call that writes two tables and then fails before committing: both writes must vanish."""
    session.execute(update(Product).where(Product.sku == sku).values(stock=Product.stock - 1))
    session.add(Order(customer_id=customer_id, total=Decimal("1.00")))
    session.flush()
    session.execute(text("SELECT 1 / 0"))  # the failure, after both writes reached the database
    session.commit()
