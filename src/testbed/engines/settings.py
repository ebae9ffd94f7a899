"""The settings classes of the built-in engines, apart from their engines: validating [tool.testbed] (which
every run does before its first test) imports this small module, not the engines with their runners."""

from __future__ import annotations

from dataclasses import dataclass

from testbed.config import ServiceSettings, SqlSettings, setting


@dataclass(frozen=True)
class PostgresSettings(SqlSettings):
    """[tool.testbed.postgres]: the common keys, the SQL ones (migrations, isolation, ...), the async driver."""

    async_driver: str = setting("psycopg", kind="choice", choices=("psycopg", "asyncpg"),
                                doc="the driver of the async_db_session fixture")


@dataclass(frozen=True)
class MysqlSettings(SqlSettings):
    """[tool.testbed.mysql]: the common keys and the SQL ones (migrations, isolation, ...)."""


@dataclass(frozen=True)
class NatsSettings(ServiceSettings):
    """[tool.testbed.nats]: the common keys plus JetStream."""

    jetstream: bool = setting(True, kind="bool", doc="enable JetStream (streams, KV) on the server")


@dataclass(frozen=True)
class S3Settings(ServiceSettings):
    """[tool.testbed.s3]: the common keys, the region, and credentials and a bucket prefix for an existing S3."""

    region: str = setting("us-east-1", kind="str", doc="the region clients are given")
    access_key: str | None = setting(None, kind="str", doc="runner = 'existing': the access key id")
    secret_key: str | None = setting(None, kind="str", doc="runner = 'existing': the secret access key")
    bucket_prefix: str = setting("testbed-", kind="str", doc="runner = 'existing': buckets testbed may delete")
