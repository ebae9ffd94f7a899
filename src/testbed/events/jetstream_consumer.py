"""The test consumer on JetStream: a durable pull consumer with explicit acks, on its own event-loop thread.

The consumer is created when the test asks for it (deliver policy "new": only messages stored afterwards),
with ``ack_wait`` = ``redeliver_after`` and the test's ``max_deliver``, and one message in flight
(``max_ack_pending`` 1) so deliveries come in a deterministic order. While the handler runs (on a worker
thread), the consumer tells the server it is still working (``in_progress``), so a slow handler on a loaded
machine is never redelivered by accident. A crash closes the connection without acknowledging and binds a
new connection to the same durable consumer: JetStream redelivers once ``ack_wait`` has passed.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from testbed.events.redelivery import ACK, CRASH_BEFORE_ACK, DEAD_LETTER, Delivery, FaultyConsumer
from testbed.events.redelivery import ConsumerUsageError as _UsageError

T = TypeVar("T")
CALL_TIMEOUT = 10.0
FETCH_WAIT = 0.5  # a fetch request's expiry: how often the loop looks at its stop flag


class JetStreamConsumer(FaultyConsumer):
    """A durable JetStream pull consumer on ``topic`` (a subject some stream stores; ``stream=`` to name it)."""

    backend = "jetstream"

    def __init__(self, url: str, topic: str, handler: Callable[[Delivery], Any], *, stream: str | None = None,
                 **options: Any) -> None:
        super().__init__(topic, handler, source="nats://" + url.rsplit("@", 1)[-1].removeprefix("nats://"),
                         **options)
        self.url = url
        self.stream = stream or ""
        self.durable = "testbed-consumer-" + secrets.token_hex(4)
        self._stopping = False
        self._nc: Client | None = None
        self._sub: Any = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="testbed-jetstream-consumer", daemon=True)
        self._thread.start()
        try:
            self._call(self._setup())
        except BaseException:
            self._stop_loop()
            raise
        self._task = asyncio.run_coroutine_threadsafe(self._consume(), self._loop)

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = CALL_TIMEOUT) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _connect(self) -> None:
        self._nc = await nats.connect(self.url, allow_reconnect=False, connect_timeout=5, max_reconnect_attempts=0,
                                      name="testbed-consumer")
        self._sub = await self._nc.jetstream().pull_subscribe_bind(self.durable, stream=self.stream)

    async def _setup(self) -> None:
        nc = await nats.connect(self.url, allow_reconnect=False, connect_timeout=5, max_reconnect_attempts=0,
                                name="testbed-consumer")
        try:
            js = nc.jetstream()
            if not self.stream:
                try:
                    self.stream = await js.find_stream_name_by_subject(self.topic)
                except nats.js.errors.NotFoundError:
                    raise _UsageError(
                        f"JetStream: no stream stores subject {self.topic!r} on {self.source}, so nothing could be "
                        "redelivered. Create the stream first (the application's setup, or `js.add_stream(name=..., "
                        "subjects=[...])`), or pass stream=.", boundary="jetstream") from None
            await js.add_consumer(self.stream, ConsumerConfig(
                durable_name=self.durable, filter_subject=self.topic, ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.NEW, ack_wait=self.redeliver_after, max_deliver=self.max_deliver,
                max_ack_pending=1))
        finally:
            await nc.close()
        await self._connect()

    async def _consume(self) -> None:
        try:
            while not self._stopping:
                try:
                    (msg,) = await self._sub.fetch(1, timeout=FETCH_WAIT)
                except nats.errors.TimeoutError:
                    continue
                delivery = await self._handle(msg)
                if delivery.action == ACK:
                    await msg.ack_sync(timeout=CALL_TIMEOUT)
                elif delivery.action == DEAD_LETTER:
                    await msg.term()
                elif delivery.action == CRASH_BEFORE_ACK:
                    assert self._nc is not None
                    await self._nc.close()  # the message stays unacknowledged: redelivered after ack_wait
                    await self._connect()  # restarted, like a supervised process
                else:
                    await msg.nak()
                self._record(delivery)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the connection broke: the waiting test hears about it
            if not self._stopping:
                self._fail(exc)

    async def _handle(self, msg: Msg) -> Delivery:
        md = msg.metadata
        work = asyncio.ensure_future(asyncio.to_thread(
            self._decide, topic=msg.subject, raw=msg.data, headers=msg.headers or {},
            message_id=str(md.sequence.stream), num_delivered=md.num_delivered, redelivered=md.num_delivered > 1))
        while True:  # keep the server from redelivering while the handler works
            done, _ = await asyncio.wait({work}, timeout=self.redeliver_after / 3)
            if done:
                return work.result()
            await msg.in_progress()

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        self._stopping = True
        try:
            self._task.result(FETCH_WAIT + CALL_TIMEOUT)
        except Exception:  # noqa: S110 - already reported to the test through _fail
            pass
        try:
            self._call(self._teardown(), timeout=5)
        except Exception:  # noqa: S110 - a dead server has nothing left to clean
            pass
        finally:
            self._stop_loop()

    async def _teardown(self) -> None:
        if self._nc is None or self._nc.is_closed:
            return
        try:
            await self._nc.jetstream().delete_consumer(self.stream, self.durable)
        finally:
            await self._nc.close()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()
