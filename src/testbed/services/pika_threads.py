"""Moved to :mod:`testbed.engines.pika_threads` (kept for one release)."""

from testbed.engines.pika_threads import stop_consumer  # noqa: F401
