"""pytester: what a user sees from the `events` fixture when an expectation fails or the broker dies."""

from __future__ import annotations

import pytest


def test_a_timed_out_expect_shows_the_near_misses_and_the_users_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_orders='''
def test_order_event(events):
    events.listen("orders.created")
    events.publish("orders.created", {"orderId": "o-1", "amount": 10})
    events.expect("orders.created", match={"orderId": "o-2"}, timeout=0.3)
''')
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*events.expect(\"orders.created\", match={\"orderId\": \"o-2\"}, timeout=0.3)",
        "E *[[]events] no message on 'orders.created' (nats, nats://127.0.0.1:*) matched a payload containing*",
        "E *1 message(s) received on 'orders.created' since listen():",
        "E *#1 +* ms {\"amount\": 10, \"orderId\": \"o-1\"}",
        "E *- $.orderId: expected 'o-2', got 'o-1'",
    ])
    assert "capture.py:" not in result.stdout.str()  # testbed's frames are hidden; the test's line is shown


def test_expect_before_listen_fails_with_the_fix(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_orders='''
def test_order_event(events):
    events.expect("orders.created", timeout=0.1)
''')
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*[[]events] events.expect('orders.created'): nothing listens to 'orders.created'*"])


def test_killing_the_broker_mid_test_fails_fast_with_its_log(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_orders='''
import os, signal, threading

def test_order_event(events, testbed_nats_server):
    events.listen("orders.created")
    threading.Timer(0.2, os.kill, [testbed_nats_server.pid, signal.SIGKILL]).start()
    events.expect("orders.created", timeout=120)
''')
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    # A hang would end in EventTimeoutError after 120 s; the lost connection is reported instead.
    result.stdout.fnmatch_lines([
        "E *[[]nats] the connection to nats://127.0.0.1:* broke while waiting for any message on 'orders.created'*",
        "E *NATS (pid *, port *) is no longer running*",
    ])
