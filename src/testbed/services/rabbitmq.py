"""Moved to :mod:`testbed.engines.rabbitmq` (kept for one release)."""

from __future__ import annotations

from testbed.config import ServiceSettings
from testbed.engines.rabbitmq import (
    DEFAULT_PLUGINS,
    ENGINE,
    NODE_NAME,
    SPEC,
    USER,
    RabbitMQEndpoint,
    RabbitMQServer,
    discover,
    find_epmd,
    password_hash,
    real_script,
    running,
    worker_vhost,
)
from testbed.runners.binaries import Candidate


def choose_binary(settings: ServiceSettings) -> Candidate:
    """The first RabbitMQ of the pinned version; a clear error when there is none."""
    return ENGINE.choose_binary(settings)


__all__ = ["DEFAULT_PLUGINS", "NODE_NAME", "SPEC", "USER", "RabbitMQEndpoint", "RabbitMQServer", "choose_binary",
           "discover", "find_epmd", "password_hash", "real_script", "running", "worker_vhost"]
