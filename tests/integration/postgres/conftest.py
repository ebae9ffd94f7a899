from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

SCHEMA = """
CREATE TABLE customers (id bigserial PRIMARY KEY, name text NOT NULL);
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers(id),
                     total numeric(10, 2) NOT NULL);
CREATE TABLE statuses (code text PRIMARY KEY);
INSERT INTO statuses VALUES ('new'), ('paid');
"""


def write_project(path: Path, *, table: str = "", schema: str = SCHEMA, version: str | None = None) -> None:
    """A pytester project with [tool.testbed.postgres] and a migrations folder."""
    (path / "migrations").mkdir(exist_ok=True)
    (path / "migrations" / "001_schema.sql").write_text(schema)
    pin = f'version = "{version}"\n' if version else ""
    (path / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [tool.testbed.postgres]
            migrations = "migrations/"
            {pin}{table}
            """
        )
    )


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    write_project(pytester.path)
    return pytester


@pytest.fixture
def make_project():  # type: ignore[no-untyped-def]
    return write_project
