"""Moved to :mod:`testbed.engines.rabbitmq_inventory` (kept for one release)."""

from testbed.engines.rabbitmq_inventory import *  # noqa: F401,F403
