"""Capturing what services publish to brokers, and waiting for it without sleeping.

``listen`` before the action, ``expect`` / ``expect_count`` / ``assert_none`` after it, on NATS,
JetStream, RabbitMQ and Redis (pub/sub and streams) with the same API.
"""

from __future__ import annotations

from testbed.events.capture import (
    BrokerConnectionLostError,
    CapturedMessage,
    EventCapture,
    EventTimeoutError,
    decode_payload,
)
from testbed.events.matchers import JsonSchema
from testbed.events.names import scoped_name
from testbed.events.recorder import EventRecorder, EventsUsageError

__all__ = [
    "BrokerConnectionLostError",
    "CapturedMessage",
    "EventCapture",
    "EventRecorder",
    "EventTimeoutError",
    "EventsUsageError",
    "JsonSchema",
    "decode_payload",
    "scoped_name",
]
