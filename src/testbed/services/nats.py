"""Moved to :mod:`testbed.engines.nats` (kept for one release)."""

from __future__ import annotations

from testbed.config import ServiceSettings
from testbed.engines.nats import (
    ENGINE,
    SPEC,
    NatsEndpoint,
    NatsProtocolError,
    NatsServer,
    NatsSettings,
    jetstream_api,
    protocol_request,
    running,
    worker_account,
)
from testbed.runners.binaries import Candidate


def discover(settings: ServiceSettings) -> list[Candidate]:
    """Every nats-server binary found, in discovery order (config, PATH, system, pip)."""
    return ENGINE.discover(settings)


def choose_binary(settings: ServiceSettings) -> Candidate:
    """The first nats-server of the pinned version; a clear error when there is none."""
    return ENGINE.choose_binary(settings)


__all__ = ["SPEC", "NatsEndpoint", "NatsProtocolError", "NatsServer", "NatsSettings", "choose_binary", "discover",
           "jetstream_api", "protocol_request", "running", "worker_account"]
