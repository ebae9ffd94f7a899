"""Duplicates and disorder on purpose: the same messages published again (same id) and out of order.

A consumer that is correct only when each message arrives once, in order, breaks in production the first
time a producer retries after a lost acknowledgement or two partitions race. ``injection_order`` says in
which order to publish which message (pure, seeded, printed in failures); ``events.inject(...)`` publishes
that sequence with identical bytes and headers for every copy, so a duplicate is the same message, id
included.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from testbed.errors import TestbedError
from testbed.events.capture import encode_payload

if TYPE_CHECKING:
    from testbed.events.backend import Backend

ORDERS = ("reversed", "shuffled", "as-given")


class InjectionError(TestbedError):
    """An injection that cannot be made as asked (bad order, or the broker dropped a duplicate)."""

    boundary = "events"


@dataclass(frozen=True)
class Injection:
    """What was published: indexes into the messages given, in publish order."""

    topic: str
    sequence: tuple[int, ...]
    order: str
    seed: int | None = None

    def describe(self) -> str:
        seed = f", seed {self.seed}" if self.seed is not None else ""
        return f"published to {self.topic!r} as messages {list(self.sequence)} ({self.order}{seed})"


def injection_order(count: int, *, duplicates: int = 1, order: str | Sequence[int] = "reversed",
                    seed: int | None = None) -> tuple[int, ...]:
    """Which message to publish when: every one of ``count`` messages ``1 + duplicates`` times.

    ``order``: "reversed" (last message first; the copies follow in a second round, so a duplicate is never
    next to its original), "shuffled" (a permutation of every copy drawn from ``seed``, never the given
    order), "as-given", or an explicit sequence of indexes (which may repeat; ``duplicates`` is then unused).
    """
    if count < 1:
        raise InjectionError("inject: no messages given.")
    if not isinstance(order, str):
        sequence = tuple(int(i) for i in order)
        bad = [i for i in sequence if not 0 <= i < count]
        if bad or not sequence:
            raise InjectionError(f"inject: order={list(order)} must list indexes of the {count} message(s) "
                                 f"(0..{count - 1}).")
        return sequence
    if order not in ORDERS:
        raise InjectionError(f"inject: order={order!r}; expected one of {', '.join(map(repr, ORDERS))} or a list "
                             "of message indexes.")
    if duplicates < 0:
        raise InjectionError(f"inject: duplicates={duplicates}; 0 or more extra copies of each message.")
    one_round = list(range(count))
    if order == "reversed":
        one_round.reverse()
    rounds = one_round * (1 + duplicates)
    if order != "shuffled":
        return tuple(rounds)
    rng = random.Random(seed)
    natural = sorted(rounds)
    for _ in range(100):
        rng.shuffle(rounds)
        if rounds != natural or count == 1:
            return tuple(rounds)
    return tuple(reversed(natural))


def publish_injection(backend: Backend, topic: str, messages: list[Any], *, duplicates: int = 1,
                      order: str | Sequence[int] = "reversed", seed: int | None = None,
                      headers: Mapping[str, str] | Callable[[Any], Mapping[str, str]] | None = None,
                      **options: Any) -> Injection:
    """Publish ``messages`` through ``backend`` in the order ``injection_order`` gives; every copy identical."""
    if order == "shuffled" and seed is None:
        seed = random.randrange(2**32)  # drawn here so the failure can name it and a rerun can replay it
    sequence = injection_order(len(messages), duplicates=duplicates, order=order, seed=seed)
    for position, index in enumerate(sequence):
        message = messages[index]
        extra = headers(message) if callable(headers) else headers
        ack = backend.publish(topic, encode_payload(message), extra, **options)
        if getattr(ack, "duplicate", False):
            raise InjectionError(
                f"inject: JetStream dropped publish #{position + 1} (message {index}) as a duplicate: the stream "
                "saw the same Nats-Msg-Id within its duplicate window, so no consumer will ever receive this copy "
                "and the test would prove nothing. Carry the message id in another header or in the payload (a "
                "producer retrying after the window does exactly that).", boundary="jetstream")
    return Injection(topic, sequence, order if isinstance(order, str) else "explicit",
                     seed if order == "shuffled" else None)
