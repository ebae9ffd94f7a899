"""Capturing NATS and JetStream messages: a nats-py connection on its own event-loop thread.

Core NATS: a plain subscription, flushed (the server has registered it) before ``listen`` returns.
JetStream: an ordered consumer with deliver policy "new", so only messages stored after ``listen`` are
seen, never the stream's history from earlier tests or runs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy

from testbed.errors import TestbedError
from testbed.events.capture import EventCapture

T = TypeVar("T")
CALL_TIMEOUT = 10.0


class NatsCaptureError(TestbedError):
    """Subscribing or publishing on NATS failed."""

    boundary = "nats"


class NatsBackend:
    """One NATS connection for the captures of a test; ``jetstream=True`` subscribes through JetStream."""

    def __init__(self, url: str, *, jetstream: bool = False, diagnose: Callable[[], str] | None = None) -> None:
        self.name = "jetstream" if jetstream else "nats"
        self.jetstream = jetstream
        self.url = url
        self.source = "nats://" + url.rsplit("@", 1)[-1].removeprefix("nats://")
        self.diagnose = diagnose
        self._captures: list[EventCapture] = []
        self._closing = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"testbed-{self.name}", daemon=True)
        self._thread.start()
        try:
            self._nc: Client = self._call(self._connect())
        except BaseException:
            self._stop_loop()
            raise

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = CALL_TIMEOUT) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _connect(self) -> Client:
        async def lost(*_: object) -> None:
            if not self._closing:
                err = ConnectionError(f"NATS connection to {self.source} closed")
                for cap in self._captures:
                    cap.fail(err)

        async def on_error(exc: Exception) -> None:
            if not self._closing:
                for cap in self._captures:
                    cap.fail(exc)

        try:
            return await nats.connect(self.url, allow_reconnect=False, connect_timeout=5, max_reconnect_attempts=0,
                                      disconnected_cb=lost, closed_cb=lost, error_cb=on_error,
                                      name="testbed-events")
        except Exception as exc:
            raise NatsCaptureError(
                f"could not connect to {self.source} to capture events: {type(exc).__name__}: {exc}."
                + (f"\n{self.diagnose()}" if self.diagnose else "")
            ) from exc

    def subscribe(self, capture: EventCapture, **options: Any) -> None:
        """Subscribe now; return once the server has the subscription (so nothing published later is lost)."""
        self._captures.append(capture)
        self._call(self._subscribe(capture, **options))

    async def _subscribe(self, capture: EventCapture, *, stream: str | None = None) -> None:
        async def on_msg(msg: Msg) -> None:
            capture.deliver(msg.subject, msg.data, msg.headers or {})

        if not self.jetstream:
            await self._nc.subscribe(capture.topic, cb=on_msg)
            await self._nc.flush()
            return
        js = self._nc.jetstream()
        try:
            await js.subscribe(capture.topic, stream=stream, cb=on_msg, ordered_consumer=True,
                               deliver_policy=DeliverPolicy.NEW)
        except nats.js.errors.NotFoundError as exc:
            raise NatsCaptureError(
                f"JetStream: no stream stores subject {capture.topic!r} on {self.source} ({exc}). Create the "
                "stream first (the application's setup, or `js.add_stream(name=..., subjects=[...])`), or "
                "listen with backend='nats' to capture core NATS messages instead."
            ) from exc
        await self._nc.flush()

    def publish(self, topic: str, payload: bytes, headers: Mapping[str, str] | None = None,
                **options: Any) -> Any:
        """Publish (JetStream: and wait for the stream's acknowledgement, which is returned)."""
        if self.jetstream:
            return self._call(self._nc.jetstream().publish(topic, payload,
                                                           headers=dict(headers) if headers else None))
        self._call(self._publish(topic, payload, headers))
        return None

    async def _publish(self, topic: str, payload: bytes, headers: Mapping[str, str] | None) -> None:
        await self._nc.publish(topic, payload, headers=dict(headers) if headers else None)
        await self._nc.flush()

    def close(self) -> None:
        self._closing = True
        for cap in self._captures:
            cap.close()
        try:
            if not self._nc.is_closed:
                self._call(self._nc.close(), timeout=5)
        except Exception:  # noqa: S110 - closing a connection to a dead server must not mask the test's result
            pass
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        async def cancel_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            self._call(cancel_rest(), timeout=5)
        except Exception:  # noqa: S110
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
