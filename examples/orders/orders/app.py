"""The HTTP API (FastAPI): POST /orders, GET /orders/{id}, GET /customers/{id}/lifetime-value."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field
from sqlalchemy import create_engine
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from orders.db import InsufficientStock, Order, Product, User, create_order, lifetime_value
from orders.events import NatsPublisher
from orders.payments import GatewayError, GatewayTimeout, PaymentClient, PaymentDeclined

ORDER_CREATED = "orders.created"


@dataclass(frozen=True)
class Settings:
    database_url: str
    payment_url: str
    nats_url: str
    order_created_subject: str = ORDER_CREATED
    payment_timeout: float = 1.0
    payment_attempts: int = 3
    payment_ca_bundle: str | bool = True
    pool_size: int = 5
    pool_timeout: float = 2.0


class NewOrder(BaseModel):
    userId: Annotated[str, Field(min_length=1, max_length=64)]
    productId: Annotated[str, Field(min_length=1, max_length=64)]
    quantity: Annotated[int, Field(gt=0, le=1000)]


def minor_units(amount: Decimal) -> int:
    return int((amount * 100).to_integral_exact())


def create_app(settings: Settings) -> FastAPI:
    engine = create_engine(
        settings.database_url.replace("postgresql://", "postgresql+psycopg://", 1),
        pool_size=settings.pool_size, max_overflow=0, pool_timeout=settings.pool_timeout,
    )
    sessions = sessionmaker(engine, expire_on_commit=False)
    payments = PaymentClient(settings.payment_url, timeout=settings.payment_timeout,
                             attempts=settings.payment_attempts, verify=settings.payment_ca_bundle)
    publisher = NatsPublisher(settings.nats_url)
    app = FastAPI(title="orders")
    app.state.engine = engine
    app.state.order_created_subject = settings.order_created_subject

    def close() -> None:
        publisher.close()
        payments.close()
        engine.dispose()

    app.state.close = close

    def session() -> Session:
        return sessions()

    @app.post("/orders", status_code=201)
    def post_order(body: NewOrder) -> dict[str, str]:
        order_id = uuid.uuid4()
        try:
            with session() as s:
                user = s.get(User, body.userId)
                product = s.get(Product, body.productId)
                if user is None or product is None:
                    raise HTTPException(404, f"unknown {'user' if user is None else 'product'}")
                if product.stock < body.quantity:
                    raise HTTPException(409, "insufficient stock")
                amount = product.price * body.quantity
        except PoolTimeout:
            raise HTTPException(503, "database connection pool exhausted; try again") from None
        try:
            charge = payments.charge(user_id=body.userId, amount_minor=minor_units(amount), currency="USD",
                                     idempotency_key=str(order_id))
        except PaymentDeclined as exc:
            raise HTTPException(402, f"payment declined: {exc.reason}") from None
        except GatewayTimeout:
            raise HTTPException(504, "payment gateway timed out") from None
        except GatewayError:
            raise HTTPException(502, "payment gateway failed") from None
        try:
            with session() as s, s.begin():
                order = create_order(s, user_id=body.userId, product_id=body.productId,
                                     quantity=body.quantity, amount=amount, payment_id=charge.payment_id)
                order.id = order_id
        except InsufficientStock:
            payments.refund(charge.payment_id)
            raise HTTPException(409, "insufficient stock") from None
        publisher.publish(app.state.order_created_subject, {
            "orderId": str(order_id), "userId": body.userId, "productId": body.productId,
            "quantity": body.quantity, "amount": minor_units(amount),
        })
        return {"orderId": str(order_id)}

    @app.get("/orders/{order_id}")
    def get_order(order_id: uuid.UUID) -> dict[str, Any]:
        with session() as s:
            order = s.get(Order, order_id)
            if order is None:
                raise HTTPException(404, "no such order")
            return {
                "orderId": str(order.id), "userId": order.user_id, "productId": order.product_id,
                "quantity": order.quantity, "amount": str(order.amount), "status": order.status,
                "createdAt": order.created_at.isoformat(),
            }

    @app.get("/customers/{user_id}/lifetime-value")
    def get_lifetime_value(user_id: str) -> dict[str, str]:
        with session() as s:
            if s.get(User, user_id) is None:
                raise HTTPException(404, "unknown user")
            return {"customerId": user_id, "lifetimeValue": str(lifetime_value(s, user_id))}

    return app


