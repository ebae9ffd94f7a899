"""Capturing Redis pub/sub messages and stream entries, each on its own connection and thread.

Pub/sub: SUBSCRIBE (PSUBSCRIBE for patterns) and wait for the server's confirmation before ``listen``
returns. Streams: remember the stream's last entry id at ``listen`` and XREAD BLOCK from there, so only
entries added afterwards are seen. Each reader also listens on a private control channel/stream, which
``close`` writes to: the thread wakes at once instead of polling a flag.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Mapping
from typing import Any

import redis as redis_py

from testbed.errors import TestbedError
from testbed.events.capture import EventCapture

CONTROL_PREFIX = "testbed:events:control:"


class RedisCaptureError(TestbedError):
    """Subscribing or publishing on Redis failed."""

    boundary = "redis"


class RedisBackend:
    """Pub/sub channels (``streams=False``) or stream keys (``streams=True``) of one Redis database."""

    def __init__(self, url: str, *, streams: bool = False, diagnose: Callable[[], str] | None = None) -> None:
        self.name = "redis-stream" if streams else "redis"
        self.streams = streams
        self.url = url
        self.diagnose = diagnose
        self._client = redis_py.Redis.from_url(url)
        kw = self._client.connection_pool.connection_kwargs
        self.source = f"redis://{kw.get('host')}:{kw.get('port')}/{kw.get('db', 0)}"
        self._readers: list[_Reader] = []

    def subscribe(self, capture: EventCapture, **options: Any) -> None:
        reader: _Reader = _StreamReader(self, capture) if self.streams else _PubSubReader(self, capture, **options)
        self._readers.append(reader)
        reader.start()

    def publish(self, topic: str, payload: bytes, headers: Mapping[str, str] | None = None,
                **options: Any) -> None:
        """PUBLISH on a channel, or XADD to a stream (the payload in field ``data``, headers as fields)."""
        try:
            if self.streams:
                fields: dict[str, str | bytes] = {"data": payload, **(headers or {})}
                self._client.xadd(topic, fields)  # type: ignore[arg-type]
            else:
                self._client.publish(topic, payload)
        except redis_py.RedisError as exc:
            raise RedisCaptureError(f"could not publish to {topic!r} on {self.source}: {exc}") from exc

    def close(self) -> None:
        for reader in self._readers:
            reader.stop()
        self._client.close()


class _Reader:
    def __init__(self, backend: RedisBackend, capture: EventCapture) -> None:
        self.backend = backend
        self.capture = capture
        self.control = CONTROL_PREFIX + secrets.token_hex(8)
        self.stopping = False
        self.thread = threading.Thread(target=self._guarded, name=f"testbed-{backend.name}", daemon=True)

    def start(self) -> None:
        raise NotImplementedError

    def _loop(self) -> None:
        raise NotImplementedError

    def _guarded(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # the connection broke: every waiting test must hear about it
            if not self.stopping:
                self.capture.fail(exc)

    def _wake(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self.stopping = True
        self.capture.close()
        if self.thread.is_alive():
            try:
                self._wake()
            except redis_py.RedisError:
                pass  # the server is gone, so is the reader's blocking read
            self.thread.join(5)


class _PubSubReader(_Reader):
    def __init__(self, backend: RedisBackend, capture: EventCapture, *, pattern: bool | None = None) -> None:
        super().__init__(backend, capture)
        self.pattern = pattern if pattern is not None else any(c in capture.topic for c in "*?[")
        self.pubsub = backend._client.pubsub()  # type: ignore[no-untyped-call]

    def start(self) -> None:
        try:
            self.pubsub.subscribe(self.control)
            if self.pattern:
                self.pubsub.psubscribe(self.capture.topic)
            else:
                self.pubsub.subscribe(self.capture.topic)
            confirmed = 0
            while confirmed < 2:  # both (p)subscribe confirmations: the server now routes to us
                msg = self.pubsub.get_message(timeout=5)
                if msg is None:
                    raise RedisCaptureError(f"{self.backend.source} did not confirm SUBSCRIBE within 5 s.")
                if msg["type"] in ("subscribe", "psubscribe"):
                    confirmed += 1
        except redis_py.RedisError as exc:
            self.pubsub.close()
            raise RedisCaptureError(f"could not subscribe to {self.capture.topic!r} on {self.backend.source}: "
                                    f"{exc}" + (f"\n{self.backend.diagnose()}" if self.backend.diagnose else "")
                                    ) from exc
        self.thread.start()

    def _loop(self) -> None:
        try:
            for msg in self.pubsub.listen():
                if msg["type"] not in ("message", "pmessage"):
                    continue
                channel = msg["channel"].decode() if isinstance(msg["channel"], bytes) else str(msg["channel"])
                if channel == self.control:
                    return
                data = msg["data"] if isinstance(msg["data"], bytes) else str(msg["data"]).encode()
                self.capture.deliver(channel, data, {})
        finally:
            self.pubsub.close()

    def _wake(self) -> None:
        self.backend._client.publish(self.control, b"stop")


class _StreamReader(_Reader):
    def __init__(self, backend: RedisBackend, capture: EventCapture) -> None:
        super().__init__(backend, capture)
        self.conn = redis_py.Redis.from_url(backend.url)
        self.last_id = "0-0"

    def start(self) -> None:
        try:
            info = self.conn.xinfo_stream(self.capture.topic)
            last = info.get("last-generated-id") or b"0-0"
            self.last_id = last.decode() if isinstance(last, bytes) else str(last)
        except redis_py.ResponseError:
            self.last_id = "0-0"  # no such stream yet: everything added from now on is new
        except redis_py.RedisError as exc:
            self.conn.close()
            raise RedisCaptureError(f"could not read stream {self.capture.topic!r} on {self.backend.source}: "
                                    f"{exc}") from exc
        self.thread.start()

    def _loop(self) -> None:
        try:
            control_id = "$"
            while not self.stopping:
                got: Any = self.conn.xread({self.capture.topic: self.last_id, self.control: control_id}, block=0)
                for key, entries in got or []:
                    name = key.decode() if isinstance(key, bytes) else str(key)
                    if name == self.control:
                        return
                    for entry_id, fields in entries:
                        eid = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                        self.last_id = eid
                        self._deliver(name, eid, fields)
        finally:
            self.conn.close()

    def _deliver(self, name: str, entry_id: str, fields: Mapping[bytes, bytes]) -> None:
        raw, headers = stream_entry(entry_id, fields)
        self.capture.deliver(name, raw, headers)

    def _wake(self) -> None:
        self.backend._client.xadd(self.control, {"stop": "1"})
        self.backend._client.delete(self.control)


def stream_entry(entry_id: str, fields: Mapping[bytes, bytes]) -> tuple[bytes, dict[str, Any]]:
    """A stream entry as (payload bytes, headers): field ``data`` is the payload and the other fields are headers;
    an entry without ``data`` is its fields as a JSON object. Headers include the entry ``id``."""
    decoded = {k.decode(): v for k, v in fields.items()}
    headers: dict[str, Any] = {"id": entry_id}
    if "data" in decoded:
        raw = decoded.pop("data")
        headers.update({k: v.decode(errors="replace") for k, v in decoded.items()})
    else:
        raw = json.dumps({k: v.decode(errors="replace") for k, v in decoded.items()}).encode()
    return raw, headers
