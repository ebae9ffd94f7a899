"""A test consumer that fails or crashes before acknowledging, on purpose, so the broker redelivers.

At-least-once delivery means a consumer sees a message again whenever it did its work but the broker never
got the acknowledgement. :class:`FaultyConsumer` runs the application's handler on a real broker
(JetStream, RabbitMQ, Redis streams) and then, as the fault plan says for that delivery:

- ``"ack"``: acknowledges (the normal path);
- ``"fail-before-ack"``: negatively acknowledges, so the broker redelivers now (JetStream ``nak``,
  RabbitMQ ``basic.nack`` with requeue, Redis: the entry stays pending and is read again);
- ``"crash-before-ack"``: drops its connection without acknowledging and restarts, as a crashed process
  would; the broker redelivers after its timeout (JetStream ``ack_wait``, RabbitMQ at once, Redis: the
  restarted consumer claims the entry with ``XAUTOCLAIM`` once it was idle ``min-idle-time``).

A handler that raises is treated as a real consumer treats it: the delivery is negatively acknowledged.
After ``max_deliver`` deliveries a message is given up ("dead-letter": JetStream ``term``, RabbitMQ
``basic.nack`` without requeue, Redis ``XACK``), so no plan loops forever.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from testbed import observe
from testbed.errors import TestbedError
from testbed.events.capture import BrokerConnectionLostError, Decoder, EventTimeoutError, decode_payload

ACK = "ack"
FAIL_BEFORE_ACK = "fail-before-ack"
CRASH_BEFORE_ACK = "crash-before-ack"
DEAD_LETTER = "dead-letter"  # an outcome, not a fault one can plan: the consumer gave the message up
FAULTS = (ACK, FAIL_BEFORE_ACK, CRASH_BEFORE_ACK)

DEFAULT_MAX_DELIVER = 5
DEFAULT_REDELIVER_AFTER = 1.0  # JetStream ack_wait and Redis min-idle-time, in seconds


class ConsumerUsageError(TestbedError):
    """The test consumer was asked for something its broker cannot do."""

    boundary = "events"


@dataclass(frozen=True)
class Delivery:
    """One delivery of a message to the test consumer, and what the consumer did with it."""

    index: int  # 1-based, in the order the consumer received deliveries
    topic: str
    payload: Any
    raw: bytes
    headers: Mapping[str, Any]
    message_id: str  # the broker's id of the stored message: JetStream stream sequence, Redis entry id, AMQP message_id
    num_delivered: int  # 1 for the first delivery of the message (the broker's count where it keeps one)
    redelivered: bool
    action: str = ""  # ack / fail-before-ack / crash-before-ack / dead-letter ("" while the handler runs)
    planned: bool = False  # the fault plan chose the action (not the handler failing)
    error: str = ""  # the handler's exception, formatted
    received_at: float = field(default_factory=time.monotonic)

    def describe(self) -> str:
        ident = f" id {self.message_id}" if self.message_id else ""
        again = ", redelivered" if self.redelivered else ""
        why = " (planned)" if self.planned and self.action != ACK else ""
        line = (f"#{self.index} delivery {self.num_delivered}{again}{ident} {_preview(self.payload)} "
                f"-> {self.action}{why}")
        if self.error:
            line += "\n      handler raised: " + self.error.strip().splitlines()[-1]
        return line


FaultPlan = Sequence[str] | Callable[[Delivery], str]


def _preview(payload: Any, limit: int = 120) -> str:
    import json

    try:
        text = json.dumps(payload, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        text = repr(payload)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def planned_action(faults: FaultPlan, delivery: Delivery) -> str:
    """The action the plan gives ``delivery``: the ``index``-th name of a sequence (then "ack"), or the callable's."""
    action = faults(delivery) if callable(faults) else (faults[delivery.index - 1] if delivery.index <= len(faults)
                                                        else ACK)
    if action not in FAULTS:
        raise ConsumerUsageError(f"fault {action!r} for delivery #{delivery.index}: expected one of "
                                 f"{', '.join(map(repr, FAULTS))}.")
    return action


def _validate(faults: FaultPlan) -> None:
    if isinstance(faults, str):
        raise ConsumerUsageError(f"faults={faults!r}: give a list of actions, one per delivery in order "
                                 f"(faults=[{faults!r}]), or a function of the delivery.")
    if not callable(faults):
        for name in faults:
            if name not in FAULTS:
                raise ConsumerUsageError(f"unknown fault {name!r}: expected one of {', '.join(map(repr, FAULTS))}.")


class FaultyConsumer:
    """Runs ``handler(delivery)`` for every message on ``topic``; acknowledges, fails or crashes as planned.

    Broker-specific subclasses receive messages on their own thread and call :meth:`_decide` (runs the
    handler, picks the action), perform the action on the broker, then :meth:`_record`. The test waits with
    :meth:`wait_acked` and reads :attr:`deliveries`.
    """

    backend = "?"

    def __init__(self, topic: str, handler: Callable[[Delivery], Any], *, faults: FaultPlan = (),
                 max_deliver: int = DEFAULT_MAX_DELIVER, redeliver_after: float = DEFAULT_REDELIVER_AFTER,
                 decoder: Decoder = decode_payload, source: str = "",
                 diagnose: Callable[[], str] | None = None) -> None:
        _validate(faults)
        if max_deliver < 1:
            raise ConsumerUsageError(f"max_deliver={max_deliver}: at least 1.")
        if redeliver_after <= 0:
            raise ConsumerUsageError(f"redeliver_after={redeliver_after}: a positive number of seconds.")
        self.topic = topic
        self.handler = handler
        self.faults = faults
        self.max_deliver = max_deliver
        self.redeliver_after = redeliver_after
        self.decoder = decoder
        self.source = source
        self._diagnose = diagnose
        self._cond = threading.Condition()
        self._received = 0
        self._deliveries: list[Delivery] = []
        self._error: BaseException | None = None
        self.closed = False

    # -- on the consumer's thread ------------------------------------------------------------------
    def _decide(self, *, topic: str, raw: bytes, headers: Mapping[str, Any], message_id: str, num_delivered: int,
                redelivered: bool) -> Delivery:
        """Run the handler on one delivery and decide what to do with it (the caller does it, then records)."""
        with self._cond:
            self._received += 1
            index = self._received
        try:
            payload = self.decoder(raw)
        except Exception as exc:  # an undecodable message is a finding, and the handler still gets the bytes
            payload = {"__undecodable__": f"{type(exc).__name__}: {exc}"}
        delivery = Delivery(index, topic, payload, raw, dict(headers), message_id, num_delivered, redelivered)
        try:
            action = planned_action(self.faults, delivery)
        except Exception as exc:  # a broken plan: fail the waiting test with it, acknowledge nothing
            self._fail(exc)
            return replace(delivery, action=FAIL_BEFORE_ACK, error=f"{type(exc).__name__}: {exc}")
        error = ""
        try:
            result = self.handler(delivery)
            if inspect.isawaitable(result):  # an async handler: run it on a loop of its own, on this thread
                asyncio.run(_awaited(result))
        except Exception:
            error = traceback.format_exc(limit=-3)
        planned = True
        if error and action == ACK:
            action, planned = FAIL_BEFORE_ACK, False  # as a real consumer does with a failed message
        if action != ACK and num_delivered >= self.max_deliver:
            action, planned = DEAD_LETTER, False
        return replace(delivery, action=action, planned=planned, error=error)

    def _record(self, delivery: Delivery) -> None:
        """The action was carried out on the broker: make the delivery visible to the test."""
        with self._cond:
            self._deliveries.append(delivery)
            self._cond.notify_all()
        if observe.active():
            observe.publish("events", "delivery", f"{delivery.topic}: {delivery.describe().splitlines()[0]}",
                            topic=delivery.topic, action=delivery.action, num_delivered=delivery.num_delivered,
                            redelivered=delivery.redelivered, message_id=delivery.message_id, error=delivery.error)

    def _fail(self, error: BaseException) -> None:
        """The consumer cannot go on (connection lost, broken plan): waiters raise."""
        with self._cond:
            if self._error is None and not self.closed:
                self._error = error
            self._cond.notify_all()

    # -- read by the test --------------------------------------------------------------------------
    @property
    def deliveries(self) -> list[Delivery]:
        """Every delivery so far, in the order received, with the action taken."""
        with self._cond:
            return list(self._deliveries)

    @property
    def acked(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.action == ACK]

    def wait_acked(self, count: int = 1, timeout: float = 10.0) -> list[Delivery]:
        """Wait until ``count`` messages were acknowledged (after whatever redeliveries the plan caused).

        Fails at once when a message was given up (dead-letter) or the connection broke; on timeout, lists
        every delivery and what was done with it.
        """
        __tracebackhide__ = True
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self._error is not None:
                    self._raise_broken()
                dead = [d for d in self._deliveries if d.action == DEAD_LETTER]
                if dead:
                    raise EventTimeoutError(self._report(
                        f"the consumer on {self.topic!r} gave up a message after {self.max_deliver} deliveries "
                        f"(#{dead[0].index}); it will never be acknowledged."))
                acked = [d for d in self._deliveries if d.action == ACK]
                if len(acked) >= count:
                    return acked
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise EventTimeoutError(self._report(
                        f"the consumer on {self.topic!r} ({self.backend}, {self.source}) acknowledged {len(acked)} "
                        f"of {count} message(s) within {timeout:g} s."))
                self._cond.wait(remaining)

    def _raise_broken(self) -> None:
        __tracebackhide__ = True
        assert self._error is not None
        if isinstance(self._error, TestbedError):
            raise self._error
        detail = ""
        if self._diagnose is not None:
            try:
                detail = self._diagnose()
            except Exception as exc:
                detail = str(exc)
        raise BrokerConnectionLostError(
            f"the test consumer's connection to {self.source} broke: {type(self._error).__name__}: "
            f"{str(self._error).rstrip('.')}."
            + (f"\n{detail}" if detail else ""), boundary=self.backend) from self._error

    def _report(self, headline: str) -> str:
        plan = "a function" if callable(self.faults) else repr(list(self.faults))
        lines = [f"[events] {headline}"]
        if not self._deliveries:
            lines.append(f"Nothing was delivered on {self.topic!r} since the consumer started. Check that the code "
                         f"publishes to this {self.backend} topic on {self.source}, after consume() was called.")
        else:
            lines.append(f"{len(self._deliveries)} deliveries (fault plan: {plan}):")
            lines += ["  " + d.describe() for d in self._deliveries[:50]]
        return "\n".join(lines)

    # -- lifecycle ---------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop consuming, remove what the consumer created on the broker, close its connection."""
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def __enter__(self) -> FaultyConsumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _awaited(awaitable: Any) -> Any:
    return await awaitable
