"""Tables and the repository: money as Decimal, timestamps as timestamptz in UTC."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import DateTime, ForeignKey, Numeric, Text, func, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)


class Product(Base):
    __tablename__ = "products"
    id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    stock: Mapped[int]


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"))
    quantity: Mapped[int]
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    status: Mapped[str] = mapped_column(Text)
    payment_id: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class InsufficientStock(Exception):
    pass


def create_order(session: Session, *, user_id: str, product_id: str, quantity: int, amount: Decimal,
                 payment_id: str) -> Order:
    """Decrement stock and insert the confirmed order in the caller's transaction.

    The decrement is a single conditional UPDATE, so two concurrent orders for the last unit cannot both
    succeed, whatever the isolation level: the second one updates no row.
    """
    result = session.execute(
        update(Product)
        .where(Product.id == product_id, Product.stock >= quantity)
        .values(stock=Product.stock - quantity)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise InsufficientStock(product_id)
    order = Order(user_id=user_id, product_id=product_id, quantity=quantity, amount=amount,
                  status="confirmed", payment_id=payment_id)
    session.add(order)
    session.flush()
    return order


def lifetime_value(session: Session, user_id: str) -> Decimal:
    """What a customer spent: exactly Decimal('0.00') without orders (SUM over no rows is NULL)."""
    total = session.scalar(
        select(func.coalesce(func.sum(Order.amount), 0).cast(Numeric(12, 2)))
        .select_from(User)
        .outerjoin(Order, Order.user_id == User.id)
        .where(User.id == user_id)
    )
    return Decimal(total) if total is not None else Decimal("0.00")
