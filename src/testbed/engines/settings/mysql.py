"""MysqlSettings: [tool.testbed.mysql]'s keys (built only when that engine's table is validated)."""

from __future__ import annotations

from dataclasses import dataclass

from testbed.config import SqlSettings


@dataclass(frozen=True)
class MysqlSettings(SqlSettings):
    """[tool.testbed.mysql]: the common keys and the SQL ones (migrations, isolation, ...)."""
