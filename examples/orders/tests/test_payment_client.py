"""Boundary: the payment gateway's HTTP client against the stub server, over real sockets."""

from __future__ import annotations

import pytest
from orders.payments import GatewayError, GatewayTimeout, PaymentClient, PaymentDeclined

from testbed.stubs import post

pytestmark = pytest.mark.boundary("http_client")

CHARGE = "/v1/payments/charge"


@pytest.fixture
def payments(http_stub):  # type: ignore[no-untyped-def]
    client = PaymentClient(http_stub.url, timeout=0.3, attempts=3, backoff=0.01)
    yield client
    client.close()


def charge(payments: PaymentClient):  # type: ignore[no-untyped-def]
    return payments.charge(user_id="u", amount_minor=1234, currency="USD", idempotency_key="k-1")


def test_amount_is_sent_in_minor_units_with_an_idempotency_key(payments, http_stub):
    http_stub.stub_for(post(CHARGE).will_return(json={"status": "approved", "paymentId": "p-9"}))
    assert charge(payments).payment_id == "p-9"
    [request] = http_stub.verify(1, post(CHARGE).with_json({"userId": "u", "amount": 1234, "currency": "USD"}))
    assert request.header("Idempotency-Key") == "k-1"


def test_decline_is_not_retried(payments, http_stub):
    http_stub.stub_for(post(CHARGE).will_return(json={"status": "declined", "reason": "insufficient_funds"}))
    with pytest.raises(PaymentDeclined, match="insufficient_funds"):
        charge(payments)
    http_stub.verify(1, post(CHARGE))


def test_5xx_is_retried_a_bounded_number_of_times(payments, http_stub):
    http_stub.stub_for(post(CHARGE).will_return(status=500))
    with pytest.raises(GatewayError):
        charge(payments)
    http_stub.verify(3, post(CHARGE))


def test_timeout_really_fires(payments, http_stub):
    http_stub.stub_for(post(CHARGE).will_return(json={"status": "approved"}).with_delay(800))
    with pytest.raises(GatewayTimeout):
        charge(payments)
    http_stub.verify(3, post(CHARGE))


@pytest.mark.parametrize("fault", ["CONNECTION_RESET_BY_PEER", "EMPTY_RESPONSE", "MALFORMED_RESPONSE_CHUNK",
                                   "RANDOM_DATA_THEN_CLOSE"])
def test_socket_faults_are_gateway_errors_after_retries(payments, http_stub, fault):
    http_stub.stub_for(post(CHARGE).will_fault(fault))
    with pytest.raises(GatewayError):
        charge(payments)
    assert len(http_stub.requests) == 3
