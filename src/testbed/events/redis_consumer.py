"""The test consumer on Redis streams: a consumer group reader that can fail or crash before XACK.

Without ``group=``, it creates a consumer group of its own at the stream's end (only entries added
afterwards; ``MKSTREAM``) and destroys it on close; with ``group=`` it joins the application's group.
The Redis idioms carry the faults: a failed entry stays in the consumer's pending entries list and is read
again from its history (``XREADGROUP ... 0``); after a crash, a consumer with a new name (a restarted
process) claims entries idle for ``min-idle-time`` = ``redeliver_after`` with ``XAUTOCLAIM``. ``num_delivered`` is
the delivery count Redis keeps for the entry (``XPENDING``).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from typing import Any

import redis as redis_py

from testbed.events.redelivery import ACK, CRASH_BEFORE_ACK, DEAD_LETTER, Delivery, FaultyConsumer
from testbed.events.redis import stream_entry

READ_BLOCK_MS = 100  # how long one read blocks: how often the loop looks at its stop flag and claims idle entries


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisStreamConsumer(FaultyConsumer):
    """Reads stream ``topic`` in consumer group ``group`` (one of its own unless given)."""

    backend = "redis-stream"

    def __init__(self, url: str, topic: str, handler: Callable[[Delivery], Any], *, group: str | None = None,
                 **options: Any) -> None:
        self._client = redis_py.Redis.from_url(url)
        kw = self._client.connection_pool.connection_kwargs
        super().__init__(topic, handler, source=f"redis://{kw.get('host')}:{kw.get('port')}/{kw.get('db', 0)}",
                         **options)
        self.url = url
        self.group = group or "testbed-consumer-" + secrets.token_hex(4)
        self.own_group = False
        self._generation = 1  # the consumer name's suffix: a new one after each crash
        self._stopping = False
        try:
            self._client.xgroup_create(topic, self.group, id="$", mkstream=True)
            self.own_group = True
        except redis_py.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._thread = threading.Thread(target=self._run, name="testbed-redis-consumer", daemon=True)
        self._thread.start()

    @property
    def consumer_name(self) -> str:
        return f"{self.group}-{self._generation}"

    def _next(self, conn: Any, own_history: bool) -> tuple[str, Any] | None:
        """The next entry to handle: our own pending one to retry, one a crashed consumer left, or a new one."""
        if own_history:
            got = conn.xreadgroup(self.group, self.consumer_name, {self.topic: "0"}, count=1)
            entries = got[0][1] if got else []
            if entries:
                return _text(entries[0][0]), entries[0][1]
        idle_ms = int(self.redeliver_after * 1000)
        claimed = conn.xautoclaim(self.topic, self.group, self.consumer_name, idle_ms, "0-0", count=1)
        if claimed[1]:
            return _text(claimed[1][0][0]), claimed[1][0][1]
        got = conn.xreadgroup(self.group, self.consumer_name, {self.topic: ">"}, count=1, block=READ_BLOCK_MS)
        if got and got[0][1]:
            return _text(got[0][1][0][0]), got[0][1][0][1]
        return None

    def _run(self) -> None:
        conn = redis_py.Redis.from_url(self.url)
        retry_own = False
        try:
            while not self._stopping:
                found = self._next(conn, retry_own)
                if found is None:
                    retry_own = False
                    continue
                entry_id, fields = found
                pending = conn.xpending_range(self.topic, self.group, entry_id, entry_id, 1)
                num_delivered = int(pending[0]["times_delivered"]) if pending else 1
                raw, headers = stream_entry(entry_id, fields)
                delivery = self._decide(topic=self.topic, raw=raw, headers=headers, message_id=entry_id,
                                        num_delivered=num_delivered, redelivered=num_delivered > 1)
                retry_own = False
                if delivery.action in (ACK, DEAD_LETTER):
                    conn.xack(self.topic, self.group, entry_id)
                elif delivery.action == CRASH_BEFORE_ACK:
                    conn.close()  # the entry stays pending on the dead consumer's name
                    conn = redis_py.Redis.from_url(self.url)
                    self._generation += 1  # restarted under a new name, as a new process would be
                else:
                    retry_own = True  # fail-before-ack: still pending on our name; read it again
                self._record(delivery)
        except Exception as exc:  # the connection broke: the waiting test hears about it
            if not self._stopping:
                self._fail(exc)
        finally:
            conn.close()

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        self._stopping = True
        self._thread.join(5)
        try:
            if self.own_group:
                self._client.xgroup_destroy(self.topic, self.group)
        except redis_py.RedisError:
            pass  # the server is gone, and the group with it
        finally:
            self._client.close()
