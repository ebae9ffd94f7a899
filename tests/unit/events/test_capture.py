"""EventCapture's waiting and reporting, fed by a thread the way a broker subscriber feeds it."""

from __future__ import annotations

import json
import threading

import pytest

from testbed.events.capture import BrokerConnectionLostError, EventCapture, EventTimeoutError, decode_payload


def make_capture() -> EventCapture:
    return EventCapture("orders.created", "nats", "nats://127.0.0.1:4222")


def publish_later(capture: EventCapture, *payloads: object, gate: threading.Event | None = None) -> threading.Thread:
    def run() -> None:
        if gate is not None:
            gate.wait(5)
        for p in payloads:
            capture.deliver("orders.created", json.dumps(p).encode(), {"h": "1"})

    t = threading.Thread(target=run)
    t.start()
    return t


def test_expect_returns_the_first_matching_payload_published_while_waiting() -> None:
    cap = make_capture()
    t = publish_later(cap, {"orderId": "o-1"}, {"orderId": "o-2", "amount": 5})
    assert cap.expect({"orderId": "o-2"}, timeout=5) == {"orderId": "o-2", "amount": 5}
    t.join()


def test_expect_message_keeps_raw_bytes_and_headers_for_round_trips() -> None:
    cap = make_capture()
    cap.deliver("orders.created", b'{"a": 1}', {"content_type": "application/json"})
    msg = cap.expect_message({"a": 1}, timeout=0)
    assert msg.raw == b'{"a": 1}'
    assert msg.headers == {"content_type": "application/json"}
    assert msg.index == 1
    assert msg.topic == "orders.created"


def test_timeout_lists_every_message_seen_and_why_it_did_not_match() -> None:
    cap = make_capture()
    cap.deliver("orders.created", b'{"orderId": "o-1", "amount": 10}')
    cap.deliver("orders.created", b"not json")
    with pytest.raises(EventTimeoutError) as info:
        cap.expect({"orderId": "o-2"}, timeout=0.05)
    text = str(info.value)
    assert "no message on 'orders.created' (nats, nats://127.0.0.1:4222) matched" in text
    assert "2 message(s) received" in text
    assert "#1" in text and "$.orderId: expected 'o-2', got 'o-1'" in text
    assert "#2" in text and "$: expected an object, got str 'not json'" in text


def test_timeout_with_nothing_received_says_so_and_what_to_check() -> None:
    with pytest.raises(EventTimeoutError, match="No message at all was received on 'orders.created'"):
        make_capture().expect(timeout=0.01)


def test_assert_none_passes_on_silence_and_fails_as_soon_as_one_arrives() -> None:
    cap = make_capture()
    cap.assert_none(within=0.05)
    gate = threading.Event()
    t = publish_later(cap, {"orderId": "o-9"}, gate=gate)
    gate.set()
    with pytest.raises(EventTimeoutError, match="expected no message on 'orders.created'"):
        cap.assert_none({"orderId": "o-9"}, within=10)
    t.join()


def test_assert_none_with_a_matcher_ignores_other_messages() -> None:
    cap = make_capture()
    cap.deliver("orders.created", b'{"orderId": "o-1"}')
    cap.assert_none({"orderId": "o-2"}, within=0.01)


def test_expect_count_exact_fewer_and_more() -> None:
    cap = make_capture()
    for i in range(3):
        cap.deliver("orders.created", json.dumps({"n": i, "kind": "a" if i < 2 else "b"}).encode())
    assert [m.payload["n"] for m in cap.expect_count(2, {"kind": "a"}, timeout=0)] == [0, 1]
    with pytest.raises(EventTimeoutError, match=r"expected exactly 3 .* got 2 \(fewer\)"):
        cap.expect_count(3, {"kind": "a"}, timeout=0.01)
    with pytest.raises(EventTimeoutError, match=r"expected exactly 1 .* got 2 \(more\)"):
        cap.expect_count(1, {"kind": "a"}, timeout=0.01)


def test_expect_count_within_catches_a_late_extra_message() -> None:
    cap = make_capture()
    cap.deliver("orders.created", b'{"n": 1}')
    t = publish_later(cap, {"n": 2})
    with pytest.raises(EventTimeoutError, match=r"got 2 \(more\)"):
        cap.expect_count(1, timeout=1, within=5)
    t.join()


def test_a_lost_connection_wakes_the_waiter_with_the_diagnosis() -> None:
    cap = EventCapture("orders.created", "nats", "nats://127.0.0.1:4222",
                       diagnose=lambda: "NATS (pid 1) is no longer running. Its last log lines: boom")
    threading.Timer(0.01, cap.fail, [ConnectionError("unexpected EOF")]).start()
    with pytest.raises(BrokerConnectionLostError) as info:
        cap.expect({"orderId": "never"}, timeout=30)
    assert "ConnectionError: unexpected EOF" in str(info.value)
    assert "Its last log lines: boom" in str(info.value)
    assert str(info.value).startswith("[nats]")


def test_decode_payload_json_text_and_bytes() -> None:
    assert decode_payload(b'{"a": [1]}') == {"a": [1]}
    assert decode_payload(b"hello") == "hello"
    assert decode_payload(b"\xff\x00") == b"\xff\x00"


def test_a_custom_decoder_failure_is_recorded_on_the_message() -> None:
    def strict(raw: bytes) -> object:
        raise ValueError("bad magic byte")

    cap = EventCapture("t", "redis", "redis://x", decoder=strict)
    cap.deliver("t", b"\x00")
    assert cap.messages[0].payload == {"__undecodable__": "ValueError: bad magic byte"}
