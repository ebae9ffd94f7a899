"""The pure parts of redelivery and injection: which action a delivery gets, which message is published when."""

from __future__ import annotations

import pytest

from testbed.events import ConsumerUsageError, Delivery, InjectionError, injection_order
from testbed.events.redelivery import planned_action


def delivery(index: int, num_delivered: int = 1) -> Delivery:
    return Delivery(index, "t", {"n": index}, b"", {}, "", num_delivered, num_delivered > 1)


def test_a_list_plans_deliveries_in_arrival_order_then_acknowledges() -> None:
    plan = ["crash-before-ack", "ack", "fail-before-ack"]
    assert [planned_action(plan, delivery(i)) for i in range(1, 6)] == [
        "crash-before-ack", "ack", "fail-before-ack", "ack", "ack"]


def test_a_function_plans_from_the_delivery_itself() -> None:
    def plan(d: Delivery) -> str:
        return "ack" if d.redelivered else "fail-before-ack"

    assert planned_action(plan, delivery(1)) == "fail-before-ack"
    assert planned_action(plan, delivery(2, num_delivered=2)) == "ack"
    with pytest.raises(ConsumerUsageError, match="fault 'nak' for delivery #1: expected one of 'ack'"):
        planned_action(lambda d: "nak", delivery(1))


def test_reversed_publishes_last_first_and_the_copies_in_a_second_round() -> None:
    assert injection_order(3) == (2, 1, 0, 2, 1, 0)
    assert injection_order(3, duplicates=0) == (2, 1, 0)
    assert injection_order(2, duplicates=2, order="as-given") == (0, 1, 0, 1, 0, 1)
    assert injection_order(1) == (0, 0)  # one message: only the duplicate is possible


def test_shuffled_is_replayable_from_its_seed_and_never_the_given_order() -> None:
    first = injection_order(3, order="shuffled", seed=42)
    assert first == injection_order(3, order="shuffled", seed=42)
    assert sorted(first) == [0, 0, 1, 1, 2, 2]
    for seed in range(200):
        assert injection_order(2, duplicates=0, order="shuffled", seed=seed) == (1, 0)


def test_an_explicit_order_may_repeat_messages() -> None:
    assert injection_order(3, order=[1, 1, 0]) == (1, 1, 0)
    with pytest.raises(InjectionError, match=r"order=\[3\] must list indexes of the 3 message\(s\) \(0..2\)"):
        injection_order(3, order=[3])
    with pytest.raises(InjectionError, match="order='random'"):
        injection_order(3, order="random")
    with pytest.raises(InjectionError, match="no messages given"):
        injection_order(0)
