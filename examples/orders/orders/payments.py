"""The payment gateway client: amounts in minor units, a timeout, bounded retries on 5xx/connection errors.

Retries are safe because every attempt carries the same Idempotency-Key (the order id).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx


class PaymentDeclined(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class GatewayError(Exception):
    """The gateway failed (5xx, reset, malformed answer) on every attempt."""


class GatewayTimeout(GatewayError):
    """The gateway did not answer in time on every attempt."""


@dataclass(frozen=True)
class Charge:
    payment_id: str


class PaymentClient:
    def __init__(self, base_url: str, *, timeout: float = 1.0, attempts: int = 3, backoff: float = 0.05,
                 verify: str | bool = True) -> None:
        self.attempts = attempts
        self.backoff = backoff
        self._http = httpx.Client(base_url=base_url, timeout=timeout, verify=verify)

    def close(self) -> None:
        self._http.close()

    def charge(self, *, user_id: str, amount_minor: int, currency: str, idempotency_key: str) -> Charge:
        last: Exception | None = None
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(self.backoff * attempt)
            try:
                response = self._http.post(
                    "/v1/payments/charge",
                    json={"userId": user_id, "amount": amount_minor, "currency": currency},
                    headers={"Idempotency-Key": idempotency_key},
                )
            except httpx.TimeoutException as exc:
                last = GatewayTimeout(f"payment gateway timed out: {exc!r}")
                continue
            except httpx.TransportError as exc:  # reset, refused, malformed
                last = GatewayError(f"payment gateway connection failed: {exc!r}")
                continue
            if response.status_code >= 500:
                last = GatewayError(f"payment gateway answered {response.status_code}")
                continue
            try:
                body = response.json()
            except ValueError:
                raise GatewayError(f"payment gateway answered non-JSON {response.status_code}") from None
            if response.status_code == 200 and body.get("status") == "approved":
                return Charge(payment_id=str(body.get("paymentId", "")))
            if body.get("status") == "declined" or response.status_code == 402:
                raise PaymentDeclined(str(body.get("reason", "declined")))
            raise GatewayError(f"unexpected gateway answer {response.status_code}: {body}")
        assert last is not None
        raise last

    def refund(self, payment_id: str) -> None:
        """Best effort: give the money back when the order could not be stored after charging."""
        try:
            self._http.post(f"/v1/payments/{payment_id}/refund", headers={"Idempotency-Key": f"refund-{payment_id}"})
        except httpx.HTTPError:
            pass
