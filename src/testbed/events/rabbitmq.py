"""Capturing RabbitMQ messages: a private queue bound to the exchange, consumed on its own thread.

``listen("orders.created", exchange="orders")`` declares an exclusive, auto-deleted queue, binds it with
that routing key (topic wildcards work on topic exchanges) and starts consuming before it returns, so
the application's own queues and consumers are untouched and nothing published earlier is seen.
pika's BlockingConnection is not thread-safe: every broker call runs on the consumer thread, handed over
with ``add_callback_threadsafe``; the thread blocks in ``process_data_events`` until I/O or a callback.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from testbed.engines.pika_threads import stop_consumer
from testbed.errors import TestbedError
from testbed.events.capture import EventCapture

T = TypeVar("T")
CALL_TIMEOUT = 10.0
DEFAULT_EXCHANGE = "amq.topic"


class RabbitMQCaptureError(TestbedError):
    """Binding or publishing on RabbitMQ failed."""

    boundary = "rabbitmq"


class RabbitMQBackend:
    """One AMQP connection for the captures of a test."""

    name = "rabbitmq"

    def __init__(self, url: str, *, diagnose: Callable[[], str] | None = None) -> None:
        params = pika.URLParameters(url)
        self.url = url
        self.source = f"amqp://{params.host}:{params.port}/{params.virtual_host}"
        self.diagnose = diagnose
        self._captures: list[EventCapture] = []
        self._stopping = False
        try:
            self._conn = pika.BlockingConnection(params)
            self._channel: BlockingChannel = self._conn.channel()
        except pika.exceptions.AMQPError as exc:
            raise RabbitMQCaptureError(
                f"could not connect to {self.source} to capture events: {type(exc).__name__}: {exc}."
                + (f"\n{diagnose()}" if diagnose else "")
            ) from exc
        self._thread = threading.Thread(target=self._run, name="testbed-rabbitmq", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stopping:
                self._conn.process_data_events(time_limit=None)
        except Exception as exc:  # the connection broke: every waiting test must hear about it
            if not self._stopping:
                for cap in self._captures:
                    cap.fail(exc)

    def _call(self, fn: Callable[[], T], timeout: float = CALL_TIMEOUT) -> T:
        """Run ``fn`` on the connection's thread and return its result (or raise its error)."""
        box: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=1)

        def run() -> None:
            try:
                box.put((True, fn()))
            except BaseException as exc:  # handed back to the calling thread
                box.put((False, exc))

        if not self._thread.is_alive():
            raise RabbitMQCaptureError(f"the connection to {self.source} is closed."
                                       + (f"\n{self.diagnose()}" if self.diagnose else ""))
        self._conn.add_callback_threadsafe(run)
        try:
            ok, value = box.get(timeout=timeout)
        except queue.Empty:
            raise RabbitMQCaptureError(f"{self.source} did not answer within {timeout:g} s.") from None
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def subscribe(self, capture: EventCapture, **options: Any) -> None:
        """Bind a private queue to ``exchange`` (option, default amq.topic) with routing key ``capture.topic``."""
        exchange = str(options.pop("exchange", DEFAULT_EXCHANGE))
        if options:
            raise TypeError(f"unexpected option(s) for the rabbitmq backend: {', '.join(sorted(options))}")
        self._captures.append(capture)

        def on_message(_ch: Any, method: Any, props: pika.BasicProperties, body: bytes) -> None:
            headers: dict[str, Any] = dict(props.headers or {})
            for key in ("content_type", "content_encoding", "message_id", "correlation_id", "type", "app_id"):
                value = getattr(props, key, None)
                if value is not None:
                    headers[key] = value
            headers["exchange"] = method.exchange
            capture.deliver(method.routing_key, body, headers)

        def bind() -> None:
            # Check the exchange on a throwaway channel: a missing one closes the channel it was asked on.
            probe = self._conn.channel()
            try:
                probe.exchange_declare(exchange, passive=True)
            except pika.exceptions.ChannelClosedByBroker as exc:
                raise RabbitMQCaptureError(
                    f"exchange {exchange!r} does not exist on {self.source} ({exc.reply_text}). Declare it "
                    "before listen() (run the application's setup first), or listen on an existing exchange "
                    f"with exchange=... (default {DEFAULT_EXCHANGE!r})."
                ) from None
            if probe.is_open:
                probe.close()
            q = self._channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
            self._channel.queue_bind(q, exchange, routing_key=capture.topic)
            self._channel.basic_consume(q, on_message, auto_ack=True, exclusive=True)

        self._call(bind)

    def publish(self, topic: str, payload: bytes, headers: Mapping[str, str] | None = None, *,
                exchange: str = DEFAULT_EXCHANGE, **options: Any) -> None:
        """Publish ``payload`` to ``exchange`` with routing key ``topic``."""
        props = pika.BasicProperties(headers=dict(headers) if headers else None, **options)
        self._call(lambda: self._channel.basic_publish(exchange, topic, payload, props))

    def close(self) -> None:
        for cap in self._captures:
            cap.close()
        stop_consumer(self._conn, self._thread, self._mark_stopping)

    def _mark_stopping(self) -> None:
        self._stopping = True
