"""Kafka: not run by testbed yet. What a user gets is a clear error naming what was looked for.

Kafka needs a JVM and (before 3.3) ZooKeeper, and no pip wheel bundles it, so a local Kafka is rarely
just there. Until testbed runs one, asking for it says which executables were searched, where, and how
to get one, instead of failing with a bare "unknown service".
"""

from __future__ import annotations

import os

from testbed.config import ServiceSettings
from testbed.errors import BinaryNotFoundError
from testbed.runners import binaries, discovery
from testbed.runners.binaries import Candidate


def _kafka_version(path: str) -> str:
    # Tarball layout: kafka_2.13-3.7.0/bin/kafka-server-start.sh; Homebrew: Cellar/kafka/3.7.0/bin/...
    real = os.path.realpath(path)
    for part in reversed(real.split(os.sep)):
        if part.startswith("kafka_") and "-" in part:
            return part.rsplit("-", 1)[1]
        if binaries.parse_version(part) == part and part[:1].isdigit():
            return part
    return "unknown"


SPEC = discovery.BinarySpec(
    engine="kafka",
    label="Kafka",
    names=("kafka-server-start.sh", "kafka-server-start"),
    system_globs=("/opt/kafka/bin/kafka-server-start.sh", "/opt/kafka_*/bin/kafka-server-start.sh",
                  "/usr/local/kafka/bin/kafka-server-start.sh", "/opt/homebrew/bin/kafka-server-start",
                  "/usr/local/bin/kafka-server-start"),
    pip_bundles=(),
    version_of=_kafka_version,
    install_hint=(
        "No pip wheel bundles Kafka: download the binary tarball from https://kafka.apache.org/downloads "
        "and unpack it to /opt/kafka, or `brew install kafka`; it also needs Java 11+."
    ),
)


def discover(settings: ServiceSettings | None = None) -> list[Candidate]:
    """Every Kafka start script found (config, PATH, system folders)."""
    return discovery.discover(SPEC, settings or ServiceSettings(engine="kafka"))


def choose_binary(settings: ServiceSettings | None = None) -> Candidate:
    """Always raises: no Kafka found (with where it looked), or found but not yet runnable by testbed."""
    found = discover(settings)
    if not found:
        discovery.choose(SPEC, settings or ServiceSettings(engine="kafka"), found)  # raises BinaryNotFoundError
    raise BinaryNotFoundError(
        f"found Kafka ({binaries.describe(found).strip()}), but testbed cannot run Kafka yet: it runs "
        "PostgreSQL, MySQL/MariaDB, Redis, NATS (JetStream) and RabbitMQ. Point your test at an existing "
        "Kafka, or use NATS JetStream or Redis Streams for event tests.",
        boundary="kafka",
    )
