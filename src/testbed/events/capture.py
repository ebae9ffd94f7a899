"""EventCapture: the messages a broker delivered on one topic since the test started listening.

A backend's subscriber thread appends each message under a condition variable; ``expect`` waits on that
condition with the remaining timeout, so it returns the moment a matching message is there and never
sleeps. On a timeout it fails with every message seen on the topic and why each did not match.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from testbed import observe
from testbed.errors import TestbedError
from testbed.events import matchers
from testbed.events.matchers import Matcher

Decoder = Callable[[bytes], Any]


class EventTimeoutError(AssertionError):
    """No message matched in time (or too many did): the message lists what was seen and why."""


class BrokerConnectionLostError(TestbedError):
    """The connection a capture listened on broke (usually: the broker died) while a test waited."""


def decode_payload(raw: bytes) -> Any:
    """JSON when the bytes are JSON, else text when they are UTF-8, else the bytes themselves."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    try:
        return json.loads(text)
    except ValueError:
        return text


def encode_payload(payload: Any) -> bytes:
    """bytes as they are, str as UTF-8, anything else as JSON."""
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode()
    return json.dumps(payload).encode()


@dataclass(frozen=True)
class CapturedMessage:
    """One message as the broker delivered it: decoded payload plus the exact bytes and headers."""

    topic: str  # the subject / routing key / channel it was published on (may differ from a wildcard)
    payload: Any
    raw: bytes
    headers: Mapping[str, Any] = field(default_factory=dict)
    received_at: float = 0.0  # time.monotonic() when the subscriber received it
    index: int = 0  # 1-based position among the messages of its capture


def _preview(msg: CapturedMessage, limit: int = 200) -> str:
    try:
        text = json.dumps(msg.payload, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        text = repr(msg.payload)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class EventCapture:
    """Messages received on one topic of one backend, since ``listen()`` confirmed the subscription."""

    def __init__(self, topic: str, backend: str, source: str, decoder: Decoder = decode_payload,
                 diagnose: Callable[[], str] | None = None) -> None:
        self.topic = topic
        self.backend = backend
        self.source = source  # e.g. "nats://127.0.0.1:4222", for messages
        self.decoder = decoder
        self._diagnose = diagnose
        self._cond = threading.Condition()
        self._messages: list[CapturedMessage] = []
        self._error: BaseException | None = None
        self._closed = False
        self.listening_since = time.monotonic()

    # -- fed by backend threads --------------------------------------------------------------------
    def deliver(self, topic: str, raw: bytes, headers: Mapping[str, Any] | None = None) -> None:
        """Record one message (called from the backend's thread)."""
        try:
            payload = self.decoder(raw)
        except Exception as exc:  # a decoder failure is a finding about the message, not a crash
            payload = {"__undecodable__": f"{type(exc).__name__}: {exc}"}
        with self._cond:
            if self._closed:
                return
            msg = CapturedMessage(topic=topic, payload=payload, raw=raw, headers=dict(headers or {}),
                                  received_at=time.monotonic(), index=len(self._messages) + 1)
            self._messages.append(msg)
            self._cond.notify_all()
        if observe.active():
            observe.publish("events", "message", f"{topic}: {raw[:200].decode('utf-8', 'replace')}", topic=topic,
                            payload=raw[:4096].decode("utf-8", "replace"),
                            headers={k: str(v) for k, v in msg.headers.items()})

    def fail(self, error: BaseException) -> None:
        """Mark the capture broken (connection lost); waiters wake up and raise."""
        with self._cond:
            if self._error is None and not self._closed:
                self._error = error
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # -- read by the test --------------------------------------------------------------------------
    @property
    def messages(self) -> list[CapturedMessage]:
        """A snapshot of every message received so far."""
        with self._cond:
            return list(self._messages)

    def _raise_lost(self, waiting_for: str) -> None:
        __tracebackhide__ = True
        assert self._error is not None
        detail = ""
        if self._diagnose is not None:
            try:
                detail = self._diagnose()
            except Exception as exc:  # the diagnosis (e.g. "server died, log tail") is the message
                detail = str(exc)
        raise BrokerConnectionLostError(
            f"the connection to {self.source} broke while waiting for {waiting_for} on {self.topic!r}: "
            f"{type(self._error).__name__}: {self._error}." + (f"\n{detail}" if detail else ""),
            boundary=self.backend,
        ) from self._error

    def _wait(self, until: Callable[[list[CapturedMessage]], bool], timeout: float, what: str) -> bool:
        """Wait (on the condition, never sleeping) until ``until(messages)`` holds or ``timeout`` passes."""
        __tracebackhide__ = True
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if until(self._messages):
                    return True
                if self._error is not None:
                    self._raise_lost(what)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)

    def expect_message(self, match: Matcher = None, timeout: float = 5.0) -> CapturedMessage:
        """Wait for the first message matching ``match`` and return it whole (payload, raw, headers)."""
        __tracebackhide__ = True
        found: list[CapturedMessage] = []
        scanned = 0

        def first_match(messages: list[CapturedMessage]) -> bool:
            nonlocal scanned
            while scanned < len(messages):
                msg = messages[scanned]
                scanned += 1
                if not matchers.reasons(match, msg.payload):
                    found.append(msg)
                    return True
            return False

        if self._wait(first_match, timeout, matchers.describe(match)):
            return found[0]
        raise EventTimeoutError(self._report(
            f"no message on {self.topic!r} ({self.backend}, {self.source}) matched {matchers.describe(match)} "
            f"within {timeout:g} s.", match))

    def expect(self, match: Matcher = None, timeout: float = 5.0) -> Any:
        """Wait for the first message matching ``match`` and return its decoded payload."""
        __tracebackhide__ = True
        return self.expect_message(match, timeout).payload

    def expect_count(self, count: int, match: Matcher = None, timeout: float = 5.0,
                     within: float = 0.0) -> list[CapturedMessage]:
        """Wait until exactly ``count`` matching messages arrived; with ``within``, also that no more follow.

        Returns the matching messages. Fails as soon as there are more than ``count``.
        """
        __tracebackhide__ = True

        def matching(messages: list[CapturedMessage]) -> list[CapturedMessage]:
            return [m for m in messages if not matchers.reasons(match, m.payload)]

        what = f"{count} x {matchers.describe(match)}"
        self._wait(lambda ms: len(matching(ms)) >= count, timeout, what)
        got = matching(self.messages)
        if len(got) == count and within > 0:
            self._wait(lambda ms: len(matching(ms)) > count, within, what)
            got = matching(self.messages)
        if len(got) != count:
            more = "more" if len(got) > count else "fewer"
            raise EventTimeoutError(self._report(
                f"expected exactly {count} message(s) on {self.topic!r} ({self.backend}) matching "
                f"{matchers.describe(match)}, got {len(got)} ({more}) within {timeout + within:g} s.", match))
        return got

    def assert_none(self, match: Matcher = None, within: float = 0.5) -> None:
        """Fail if a message matching ``match`` arrives on the topic within ``within`` seconds (or already did).

        Returns early with a failure the moment one arrives; a pass necessarily takes ``within``.
        """
        __tracebackhide__ = True

        def any_match(messages: list[CapturedMessage]) -> bool:
            return any(not matchers.reasons(match, m.payload) for m in messages)

        if self._wait(any_match, within, f"no {matchers.describe(match)}"):
            bad = [m for m in self.messages if not matchers.reasons(match, m.payload)]
            raise EventTimeoutError(self._report(
                f"expected no message on {self.topic!r} ({self.backend}) matching {matchers.describe(match)}, "
                f"but {len(bad)} arrived (first: #{bad[0].index}).", match))

    def _report(self, headline: str, match: Matcher) -> str:
        messages = self.messages
        if not messages:
            return (
                f"[events] {headline}\nNo message at all was received on {self.topic!r} since listen(). "
                f"Check that the code under test publishes to this {self.backend} topic on {self.source} "
                "(the same broker URL), and that it publishes after listen() was called."
            )
        lines = [f"[events] {headline}", f"{len(messages)} message(s) received on {self.topic!r} since listen():"]
        for msg in messages[:50]:
            at = (msg.received_at - self.listening_since) * 1000
            topic = "" if msg.topic == self.topic else f" [{msg.topic}]"
            lines.append(f"  #{msg.index} +{at:.1f} ms{topic} {_preview(msg)}")
            why = matchers.reasons(match, msg.payload)
            lines += [f"      - {r}" for r in why] if why else ["      = matches"]
        if len(messages) > 50:
            lines.append(f"  ... and {len(messages) - 50} more")
        return "\n".join(lines)
