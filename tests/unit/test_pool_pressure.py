"""Recognising pool exhaustion in an error chain, from any pool; keeping the user's frames of a stack."""

from __future__ import annotations

from testbed import stacks
from testbed.isolation.pool_pressure import HeldConnection, PoolPressureReport, ServerSession, pool_exhaustion


class PoolTimeout(Exception):  # psycopg_pool's name
    pass


def test_sqlalchemy_psycopg_pool_and_server_limits_are_recognised() -> None:
    from sqlalchemy.exc import TimeoutError as SATimeout

    qp = SATimeout("QueuePool limit of size 2 overflow 0 reached, connection timed out, timeout 0.50 "
                   "(Background on this error at: https://sqlalche.me/e/20/3o7r)")
    assert pool_exhaustion(qp) == "QueuePool limit of size 2 overflow 0 reached, connection timed out, timeout 0.50"
    assert pool_exhaustion(PoolTimeout("couldn't get a connection after 1.00 sec")) is not None
    assert pool_exhaustion(Exception('FATAL:  sorry, too many clients already')) is not None
    assert pool_exhaustion(ValueError("no")) is None
    assert pool_exhaustion(None) is None


def test_a_pool_timeout_wrapped_by_the_application_is_found_in_the_chain() -> None:
    class ServiceUnavailable(Exception):
        pass

    try:
        try:
            raise PoolTimeout("couldn't get a connection after 0.50 sec")
        except PoolTimeout as exc:
            raise ServiceUnavailable("503") from exc
    except ServiceUnavailable as wrapped:
        assert pool_exhaustion(wrapped) == "couldn't get a connection after 0.50 sec"


def checkout_here() -> stacks.Stack:
    return stacks.capture(skip=0)


def test_captured_stacks_keep_the_users_frames() -> None:
    frames = stacks.user_frames(checkout_here())
    assert [f.name for f in frames][-2:] == ["test_captured_stacks_keep_the_users_frames", "checkout_here"]
    text = stacks.format_frames(frames)
    assert "return stacks.capture(skip=0)" in text  # source lines are read only when formatted


def test_the_report_names_the_longest_held_connection_first_and_matches_server_sessions() -> None:
    stack = checkout_here()
    held = (HeldConnection("QueuePool postgresql://app@h:1/db", 41, 0.2, "Thread-2", "idle", "SELECT 2", 0.1, stack),
            HeldConnection("QueuePool postgresql://app@h:1/db", 42, 3.5, "Thread-1", "idle in transaction",
                           "SELECT * FROM orders", 3.4, stack))
    from testbed.isolation.pool_pressure import PoolState

    report = PoolPressureReport(
        "QueuePool limit of size 2 overflow 0 reached", (PoolState(held[0].pool, "Pool size: 2", held),),
        (ServerSession(42, "", "127.0.0.1/32", "idle in transaction", 3.4, 3.5, "", "SELECT * FROM orders"),),
        "db")
    text = report.text()
    assert text.index("backend pid 42, checked out 3.50 s ago by thread Thread-1, idle in transaction") < text.index(
        "backend pid 41")
    assert "- pid 42 (no application_name) from 127.0.0.1/32 [held by QueuePool postgresql://app@h:1/db]: " \
           "idle in transaction for 3.40 s, transaction open 3.50 s" in text
    assert "in checkout_here" in text  # the checkout line is shown
