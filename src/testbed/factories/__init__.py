"""Test-data factories (factory_boy) bound to the running test's isolated SQLAlchemy session.

    class CustomerFactory(testbed.factories.SQLAlchemyFactory):
        class Meta:
            model = Customer
        name = factory.Faker("name")

    def test_x(db_session):
        CustomerFactory.create(name="Sam")   # persisted through db_session, whatever the isolation

The factory finds the session of the current test (bound by the ``db_session`` fixture), so rows land in
the right database for every strategy: under rollback they are undone with the test, under truncate and
clone they are committed (visible to an application's own connections) and cleaned afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from factory.alchemy import SQLAlchemyModelFactory

from testbed.errors import ConfigError

_current_session: ContextVar[Any] = ContextVar("testbed_factory_session", default=None)


def current_session() -> Any:
    """The SQLAlchemy Session of the running test; a clear error outside one."""
    session = _current_session.get()
    if session is None:
        raise ConfigError(
            "a testbed factory was used outside a test that has a database session. Request the `db_session` "
            "fixture in the test (or bind one with testbed.factories.bound_to(session))."
        )
    return session


@contextmanager
def bound_to(session: Any) -> Iterator[Any]:
    """Make factories persist through ``session`` inside the block (what ``db_session`` does per test)."""
    token = _current_session.set(session)
    try:
        yield session
    finally:
        _current_session.reset(token)


class SQLAlchemyFactory(SQLAlchemyModelFactory):
    """Base class for factories that persist through the current test's session.

    ``create()`` commits: under rollback isolation a commit is a savepoint, so nothing outlives the test;
    under truncate/clone the row is really committed, so the application under test sees it.
    """

    class Meta:
        abstract = True
        sqlalchemy_session_factory = current_session
        sqlalchemy_session_persistence = "commit"


__all__ = ["SQLAlchemyFactory", "bound_to", "current_session"]
