"""Capturing what services publish to brokers, and waiting for it without sleeping; provoking redeliveries.

``listen`` before the action, ``expect`` / ``expect_count`` / ``assert_none`` after it, on NATS,
JetStream, RabbitMQ and Redis (pub/sub and streams) with the same API. ``consume`` runs a handler behind a
consumer that fails or crashes before acknowledging, so the broker redelivers; ``inject`` publishes
duplicates out of order; ``publish`` / ``publish_async`` play the producer.
"""

from __future__ import annotations

from testbed.events.capture import (
    BrokerConnectionLostError,
    CapturedMessage,
    EventCapture,
    EventTimeoutError,
    decode_payload,
    encode_payload,
)
from testbed.events.direct import consume, inject, publish, publish_async
from testbed.events.injection import Injection, InjectionError, injection_order
from testbed.events.matchers import JsonSchema
from testbed.events.names import scoped_name
from testbed.events.recorder import EventRecorder, EventsUsageError
from testbed.events.redelivery import (
    ACK,
    CRASH_BEFORE_ACK,
    DEAD_LETTER,
    FAIL_BEFORE_ACK,
    ConsumerUsageError,
    Delivery,
    FaultyConsumer,
)

__all__ = [
    "ACK",
    "CRASH_BEFORE_ACK",
    "DEAD_LETTER",
    "FAIL_BEFORE_ACK",
    "BrokerConnectionLostError",
    "CapturedMessage",
    "ConsumerUsageError",
    "Delivery",
    "EventCapture",
    "EventRecorder",
    "EventTimeoutError",
    "EventsUsageError",
    "FaultyConsumer",
    "Injection",
    "InjectionError",
    "JsonSchema",
    "consume",
    "decode_payload",
    "encode_payload",
    "inject",
    "injection_order",
    "publish",
    "publish_async",
    "scoped_name",
]
