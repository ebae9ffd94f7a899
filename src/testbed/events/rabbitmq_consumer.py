"""The test consumer on RabbitMQ: manual acks, one message in flight, on its own connection and thread.

Without ``queue=``, it declares a queue of its own (not exclusive, so it outlives a crash) bound to
``exchange`` (default ``amq.topic``) with ``topic`` as routing key, and deletes it on close; with
``queue=`` it consumes the application's queue. A failure is ``basic.nack`` with requeue; a crash closes
the connection with the message unacknowledged, which RabbitMQ requeues at once and redelivers (flag
``redelivered``) to the restarted consumer. Classic queues keep no delivery count: ``num_delivered`` counts the
deliveries of the same message (its ``message_id``, else its bytes and headers) this consumer saw, and
quorum queues' ``x-delivery-count`` is used when present.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from testbed.events.rabbitmq import DEFAULT_EXCHANGE
from testbed.events.redelivery import ACK, CRASH_BEFORE_ACK, DEAD_LETTER, ConsumerUsageError, Delivery, FaultyConsumer

READY_TIMEOUT = 10.0


class RabbitMQConsumer(FaultyConsumer):
    """Consumes ``queue`` (or a queue of its own bound to ``exchange`` with routing key ``topic``)."""

    backend = "rabbitmq"

    def __init__(self, url: str, topic: str, handler: Callable[[Delivery], Any], *, queue: str | None = None,
                 exchange: str = DEFAULT_EXCHANGE, **options: Any) -> None:
        self._params = pika.URLParameters(url)
        super().__init__(topic, handler, source=f"amqp://{self._params.host}:{self._params.port}/"
                         f"{self._params.virtual_host}", **options)
        self.exchange = exchange
        self.own_queue = queue is None
        self.queue = queue or f"testbed.consumer.{topic}.{secrets.token_hex(4)}"
        self._seen: Counter[str] = Counter()
        self._stopping = False
        self._crash: Delivery | None = None
        self._queue_deleted = False
        self._conn: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._ready = threading.Event()
        self._declare()
        self._thread = threading.Thread(target=self._run, name="testbed-rabbitmq-consumer", daemon=True)
        self._thread.start()
        if not self._ready.wait(READY_TIMEOUT) and self._error is not None:
            raise self._error

    def _declare(self) -> None:
        conn = pika.BlockingConnection(self._params)
        try:
            ch = conn.channel()
            try:
                if self.own_queue:
                    ch.exchange_declare(self.exchange, passive=True)
                    ch.queue_declare(self.queue, durable=False, exclusive=False, auto_delete=False)
                    ch.queue_bind(self.queue, self.exchange, routing_key=self.topic)
                else:
                    ch.queue_declare(self.queue, passive=True)
            except pika.exceptions.ChannelClosedByBroker as exc:
                what = f"exchange {self.exchange!r}" if self.own_queue else f"queue {self.queue!r}"
                raise ConsumerUsageError(
                    f"{what} does not exist on {self.source} ({exc.reply_text}). Declare it first (run the "
                    "application's setup), or consume from an existing one.", boundary="rabbitmq") from None
        finally:
            if conn.is_open:
                conn.close()

    def _num_delivered(self, body: bytes, props: pika.BasicProperties, redelivered: bool) -> tuple[str, int]:
        headers = dict(props.headers or {})
        key = props.message_id or hashlib.sha1(
            body + json.dumps(headers, sort_keys=True, default=str).encode()).hexdigest()
        self._seen[key] += 1
        if "x-delivery-count" in headers:  # quorum queues count returned deliveries
            return key, int(headers["x-delivery-count"]) + 1
        return key, self._seen[key] if redelivered else 1

    def _on_message(self, ch: BlockingChannel, method: Any, props: pika.BasicProperties, body: bytes) -> None:
        headers: dict[str, Any] = dict(props.headers or {})
        for name in ("content_type", "message_id", "correlation_id", "type"):
            value = getattr(props, name, None)
            if value is not None:
                headers[name] = value
        _key, num_delivered = self._num_delivered(body, props, bool(method.redelivered))
        delivery = self._decide(topic=method.routing_key, raw=body, headers=headers,
                                message_id=props.message_id or "", num_delivered=num_delivered,
                                redelivered=bool(method.redelivered))
        if delivery.action == ACK:
            ch.basic_ack(method.delivery_tag)
        elif delivery.action == DEAD_LETTER:
            ch.basic_nack(method.delivery_tag, requeue=False)
        elif delivery.action == CRASH_BEFORE_ACK:
            self._crash = delivery
            ch.stop_consuming()  # the connection is closed below, with the message unacknowledged
            return
        else:
            ch.basic_nack(method.delivery_tag, requeue=True)
        self._record(delivery)

    def _run(self) -> None:
        try:
            while True:
                conn = pika.BlockingConnection(self._params)
                ch = conn.channel()
                ch.basic_qos(prefetch_count=1)
                ch.basic_consume(self.queue, self._on_message, auto_ack=False)
                self._conn, self._channel = conn, ch
                self._ready.set()
                ch.start_consuming()  # until a crash, or close()
                if self._crash is not None:
                    conn.close()  # RabbitMQ requeues the unacknowledged message
                    self._record(self._crash)
                    self._crash = None
                    if not self._stopping:
                        continue  # restarted, like a supervised process
                    return
                if self.own_queue and ch.is_open:
                    ch.queue_delete(self.queue)
                    self._queue_deleted = True
                conn.close()
                return
        except Exception as exc:  # the connection broke: the waiting test hears about it
            self._ready.set()
            if not self._stopping:
                self._fail(exc)

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        self._stopping = True
        conn, ch = self._conn, self._channel
        if conn is not None and ch is not None and self._thread.is_alive():
            try:
                conn.add_callback_threadsafe(ch.stop_consuming)
            except Exception:  # noqa: S110 - the connection is gone: the thread ends on its own
                pass
        self._thread.join(10)
        if self.own_queue and not self._queue_deleted:  # the thread ended on an error (or a crash while closing)
            self._delete_own_queue()

    def _delete_own_queue(self) -> None:
        try:
            conn = pika.BlockingConnection(self._params)
        except pika.exceptions.AMQPError:
            return  # the node is gone, and its queues with it
        try:
            conn.channel().queue_delete(self.queue)
        except pika.exceptions.AMQPError:
            pass
        finally:
            if conn.is_open:
                conn.close()
