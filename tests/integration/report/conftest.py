from __future__ import annotations

import textwrap

import pytest

SCHEMA = """
CREATE TABLE customers (id bigserial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers(id),
                     total numeric(10, 2) NOT NULL);
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester project with a migrated PostgreSQL (customers, orders)."""
    (pytester.path / "migrations").mkdir()
    (pytester.path / "migrations" / "001_schema.sql").write_text(SCHEMA)
    (pytester.path / "pyproject.toml").write_text(textwrap.dedent("""
        [tool.testbed.postgres]
        migrations = "migrations/"
        """))
    return pytester
