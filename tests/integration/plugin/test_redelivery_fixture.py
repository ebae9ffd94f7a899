"""pytester: what a user sees from events.consume when a message is given up or the broker dies."""

from __future__ import annotations

import pytest

SUITE = '''
import os, signal, threading

def apply_payment(payment):
    raise KeyError("amount")

def test_a_given_up_message(events):
    consumer = events.consume("payments", lambda d: apply_payment(d.payload), backend="redis-stream",
                              max_deliver=2)
    events.publish("payments", {"paymentId": "p-1"}, backend="redis-stream")
    consumer.wait_acked(1, timeout=30)

def test_z_the_broker_dies(events, testbed_redis_server):
    consumer = events.consume("payments", lambda d: None, backend="redis-stream")
    threading.Timer(0.2, os.kill, [testbed_redis_server.pid, signal.SIGKILL]).start()
    consumer.wait_acked(1, timeout=120)
'''


def test_a_given_up_message_and_a_dead_broker_fail_with_what_happened(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_payments=SUITE)
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    # the error: Redis's per-test reset after the kill, which names the death too
    result.assert_outcomes(failed=2, errors=1)
    result.stdout.fnmatch_lines([  # every delivery and what was done with it, at the test's own line
        "*consumer.wait_acked(1, timeout=30)",
        "E *[[]events] the consumer on 'payments' gave up a message after 2 deliveries (#2); it will never be "
        "acknowledged.",
        "E *2 deliveries (fault plan: []):",
        "E *#1 delivery 1 id *-* {\"paymentId\": \"p-1\"} -> fail-before-ack",
        "E *handler raised: KeyError: 'amount'",
        "E *#2 delivery 2, redelivered id *-* {\"paymentId\": \"p-1\"} -> dead-letter",
    ])
    result.stdout.fnmatch_lines([  # a hang would end after 120 s; the lost connection is reported at once
        "E *[[]redis-stream] the test consumer's connection to redis://127.0.0.1:*/0 broke: *",
        "E *Redis (pid *, port *) is no longer running*",
    ])
    assert "redelivery.py:" not in result.stdout.str()  # testbed's frames are hidden
