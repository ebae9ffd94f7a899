"""PostgresSettings: [tool.testbed.postgres]'s keys (built only when that engine's table is validated)."""

from __future__ import annotations

from dataclasses import dataclass

from testbed.config import SqlSettings, setting


@dataclass(frozen=True)
class PostgresSettings(SqlSettings):
    """[tool.testbed.postgres]: the common keys, the SQL ones (migrations, isolation, ...), the async driver."""

    async_driver: str = setting("psycopg", kind="choice", choices=("psycopg", "asyncpg"),
                                doc="the driver of the async_db_session fixture")
