"""Publishing OrderCreated to NATS, and the consumer's decoder (both sides of the event contract)."""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from typing import Any

import nats

SCHEMA_VERSION = 1


class NatsPublisher:
    """A sync facade over nats-py: its own event loop in a thread, so sync endpoints can publish."""

    def __init__(self, url: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="nats-publisher", daemon=True)
        self._thread.start()
        self._nc = self._run(nats.connect(url, connect_timeout=2, max_reconnect_attempts=0))

    def _run(self, coro: Any, timeout: float = 5.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def publish(self, subject: str, payload: dict[str, Any]) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode()
        self._run(self._nc.publish(subject, data, headers={"schema-version": str(SCHEMA_VERSION)}))
        self._run(self._nc.flush())

    def close(self) -> None:
        try:
            self._run(self._nc.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop.close()


@dataclass(frozen=True)
class OrderCreated:
    """What the consumer (e.g. a shipping service) understands of the event."""

    order_id: str
    user_id: str
    product_id: str
    quantity: int
    amount: int  # minor units


class IncompatibleEvent(ValueError):
    pass


def decode_order_created(data: bytes) -> OrderCreated:
    """The consumer's decoder: a tolerant reader (extra fields are fine, missing ones are not)."""
    try:
        payload = json.loads(data)
        return OrderCreated(
            order_id=str(payload["orderId"]),
            user_id=str(payload["userId"]),
            product_id=str(payload["productId"]),
            quantity=int(payload["quantity"]),
            amount=int(payload["amount"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise IncompatibleEvent(f"cannot decode OrderCreated: {exc!r} in {data[:200]!r}") from exc
