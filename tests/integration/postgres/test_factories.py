"""Factories persist through the test's session for every isolation strategy."""

from __future__ import annotations

import pytest

from testbed.errors import ConfigError
from testbed.factories import current_session

SUITE = """
import psycopg
import pytest
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import testbed.factories


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


class CustomerFactory(testbed.factories.SQLAlchemyFactory):
    class Meta:
        model = Customer

    name = "Sam"


@pytest.mark.parametrize("strategy", ["rollback", "truncate", "clone"])
def test_factory_rows_are_where_the_app_looks(strategy, request, db_session, db_url):
    request.node.add_marker(pytest.mark.testbed(isolation=strategy))
    customer = CustomerFactory.create(name="cancelled-order-owner")
    assert customer.id is not None
    if strategy == "clone":
        assert customer.id == 1  # a fresh database: sequences from the template
    if strategy != "rollback":
        # committed for real: an application connecting on its own sees the row
        with psycopg.connect(db_url) as conn:
            assert conn.execute("select name from customers").fetchall() == [("cancelled-order-owner",)]


def test_nothing_left(db):
    assert db.execute("select count(*) from customers").fetchone()[0] == 0
"""


def test_factories_follow_the_strategy(project: pytest.Pytester) -> None:
    # The marker is added at run time, after fixtures resolved isolation: use per-test markers instead.
    suite = SUITE.replace(
        '@pytest.mark.parametrize("strategy", ["rollback", "truncate", "clone"])\n'
        "def test_factory_rows_are_where_the_app_looks(strategy, request, db_session, db_url):\n"
        "    request.node.add_marker(pytest.mark.testbed(isolation=strategy))\n",
        '@pytest.mark.parametrize("strategy", [pytest.param(s, marks=pytest.mark.testbed(isolation=s))\n'
        '                                      for s in ["rollback", "truncate", "clone"]])\n'
        "def test_factory_rows_are_where_the_app_looks(strategy, db_session, db_url):\n",
    )
    project.makepyfile(test_factories=suite)
    project.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=4)


def test_factory_outside_a_test_session_says_what_to_do() -> None:
    with pytest.raises(ConfigError, match="Request the `db_session` fixture"):
        current_session()
