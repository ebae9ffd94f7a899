"""NatsSettings: [tool.testbed.nats]'s keys (built only when that engine's table is validated)."""

from __future__ import annotations

from dataclasses import dataclass

from testbed.config import ServiceSettings, setting


@dataclass(frozen=True)
class NatsSettings(ServiceSettings):
    """[tool.testbed.nats]: the common keys plus JetStream."""

    jetstream: bool = setting(True, kind="bool", doc="enable JetStream (streams, KV) on the server")
