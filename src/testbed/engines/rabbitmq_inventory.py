"""What queues and exchanges exist in each vhost of a RabbitMQ node, learnt from the node itself.

AMQP cannot list queues, and the management plugin (HTTP API) costs the node a fifth more CPU at boot.
The `rabbitmq_event_exchange` plugin publishes a message to `amq.rabbitmq.event` for every queue and
exchange created or deleted; an inventory consumes those from the moment it opens, so it knows every
queue and exchange a test declared since. A barrier (declare a marker, wait for its event) makes sure
the events of everything declared before a reset have been seen before the reset deletes things.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pika
import pika.exceptions

from testbed.engines.pika_threads import stop_consumer
from testbed.errors import ServerDiedError

EVENT_EXCHANGE = "amq.rabbitmq.event"
BARRIER_PREFIX = "testbed.barrier."


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class DeclarationInventory:
    """Queues and exchanges per vhost, kept current by a consumer of the node's event exchange."""

    def __init__(self, url: str) -> None:
        self._cond = threading.Condition()
        self.queues: dict[str, set[str]] = defaultdict(set)
        self.exchanges: dict[str, set[str]] = defaultdict(set)
        self._error: BaseException | None = None
        self._stopping = False
        self._conn = pika.BlockingConnection(pika.URLParameters(url))
        channel = self._conn.channel()
        q = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
        self.own_queue = q  # lives in "/", which may be a test's vhost: never reported, never deleted
        for key in ("queue.created", "queue.deleted", "exchange.created", "exchange.deleted"):
            channel.queue_bind(q, EVENT_EXCHANGE, key)
        channel.basic_consume(q, self._on_event, auto_ack=True)
        self._thread = threading.Thread(target=self._run, name="testbed-rabbitmq-inventory", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stopping:
                self._conn.process_data_events(time_limit=None)
        except Exception as exc:  # the node is gone: the next reset says so
            with self._cond:
                self._error = exc
                self._cond.notify_all()

    def _on_event(self, _ch: Any, method: Any, props: pika.BasicProperties, _body: bytes) -> None:
        headers = props.headers or {}
        name, vhost = _text(headers.get("name", "")), _text(headers.get("vhost", ""))
        kind, _, action = method.routing_key.partition(".")
        table = self.queues if kind == "queue" else self.exchanges
        with self._cond:
            if action == "created":
                table[vhost].add(name)
            else:
                table[vhost].discard(name)
            self._cond.notify_all()

    def sync(self, vhost_url: str, vhost: str, timeout: float = 10.0) -> None:
        """Return once every declaration made before this call has been seen (a marker's round trip)."""
        marker = BARRIER_PREFIX + secrets.token_hex(6)
        conn = pika.BlockingConnection(pika.URLParameters(vhost_url))
        try:
            channel = conn.channel()
            channel.exchange_declare(marker, "fanout", auto_delete=False)
            deadline = time.monotonic() + timeout
            with self._cond:
                while marker not in self.exchanges[vhost]:
                    if self._error is not None:
                        raise self._error
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise ServerDiedError(
                            f"RabbitMQ did not report the declaration of exchange {marker!r} within {timeout:g} s; "
                            "is the rabbitmq_event_exchange plugin enabled?", boundary="rabbitmq")
                    self._cond.wait(remaining)
            channel.exchange_delete(marker)
        finally:
            if conn.is_open:
                conn.close()

    def snapshot(self, vhost: str) -> tuple[set[str], set[str]]:
        """(queues, exchanges) of ``vhost`` as last reported."""
        with self._cond:
            queues = self.queues[vhost] - {self.own_queue}
            return set(queues), {x for x in self.exchanges[vhost] if not x.startswith(BARRIER_PREFIX)}

    def close(self) -> None:
        stop_consumer(self._conn, self._thread, self._mark_stopping)

    def _mark_stopping(self) -> None:
        self._stopping = True


_inventories: dict[tuple[str, int], DeclarationInventory] = {}
_lock = threading.Lock()


def inventory_for(host: str, port: int, url: Callable[[], str]) -> DeclarationInventory:
    """This process's inventory of the node at host:port (opened on first use)."""
    with _lock:
        inv = _inventories.get((host, port))
        if inv is None or inv._error is not None:
            if inv is not None:
                inv.close()
            inv = _inventories[(host, port)] = DeclarationInventory(url())
        return inv


def close_inventories() -> None:
    """Close every inventory this process opened (at the end of a session)."""
    with _lock:
        for inv in _inventories.values():
            inv.close()
        _inventories.clear()


def delete_all(vhost_url: str, queues: set[str], exchanges: set[str]) -> list[str]:
    """Delete queues and (non built-in) exchanges through AMQP; what could not be deleted is skipped."""
    removed: list[str] = []
    conn = pika.BlockingConnection(pika.URLParameters(vhost_url))
    try:
        channel = conn.channel()
        for kind, names in (("queue", sorted(queues)), ("exchange", sorted(exchanges))):
            for name in names:
                if kind == "exchange" and (name == "" or name.startswith("amq.")):
                    continue
                try:
                    if kind == "queue":
                        channel.queue_delete(name)
                    else:
                        channel.exchange_delete(name)
                    removed.append(f"{kind} {name}")
                except pika.exceptions.ChannelClosedByBroker:
                    # e.g. an exclusive queue of a connection still open: it goes when that connection does
                    channel = conn.channel()
    finally:
        if conn.is_open:
            conn.close()
    return removed


