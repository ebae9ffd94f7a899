"""Async SQL fixtures: ``async_db`` (a psycopg AsyncConnection) and ``async_db_session`` (a SQLAlchemy
AsyncSession), isolated like ``db`` / ``db_session``. They are plain (sync) fixtures whose objects work in
the test's event loop, whatever runs it: pytest-asyncio in strict or auto mode with any loop scope, or
anyio's plugin (see ``testbed.isolation.async_rollback`` for why no async fixture is needed).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from testbed.isolation.worker import TestContext, WorkerDatabase


@pytest.fixture
def async_db(testbed_isolation: TestContext, testbed_worker_database: WorkerDatabase) -> Any:
    """A psycopg 3 AsyncConnection to the test's database; ``await conn.commit()`` is allowed and undone."""
    return testbed_worker_database.async_connection(testbed_isolation)


@pytest.fixture
def async_db_session(request: pytest.FixtureRequest, testbed_isolation: TestContext,
                     testbed_worker_database: WorkerDatabase) -> Any:
    """A SQLAlchemy AsyncSession on the test's database; ``await session.commit()`` is allowed and undone.

    ``expire_on_commit=False``, as SQLAlchemy recommends for asyncio (no implicit I/O on attribute access).
    The driver is psycopg (loop-independent, fastest) unless [tool.testbed.postgres] async_driver = "asyncpg".
    """
    from testbed.plugin.session import settings

    driver = str(getattr(settings(request.config).service("postgres"), "async_driver", "psycopg"))
    session = testbed_worker_database.async_session(testbed_isolation, driver)
    if driver == "asyncpg":
        _close_in_the_tests_loop(request, testbed_isolation.async_sessions[-1].aclose)
    return session


def _close_in_the_tests_loop(request: pytest.FixtureRequest, aclose: Callable[[], Awaitable[None]]) -> None:
    """Run ``aclose`` in the test's own event loop, right after its coroutine (loop-bound drivers).

    Fixture teardown runs after pytest-asyncio or anyio may have closed a function-scoped loop, so the test
    function itself is wrapped: whatever runs coroutines runs the clean-up with them.
    """
    item = request.node
    original = getattr(item, "obj", None)
    if original is None or not inspect.iscoroutinefunction(original):
        return

    @functools.wraps(original)
    async def with_cleanup(*args: Any, **kwargs: Any) -> Any:
        try:
            return await original(*args, **kwargs)
        finally:
            await aclose()

    item.obj = with_cleanup
    request.addfinalizer(lambda: setattr(item, "obj", original))
