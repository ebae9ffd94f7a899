"""Rollback isolation for async code: psycopg's AsyncConnection and SQLAlchemy's AsyncSession whose commits
stay inside the test's transaction, like ``db`` / ``db_session``.

The loop-scope pitfall: an asyncio connection is usually bound to the event loop it was opened in, and
pytest-asyncio gives each test (or module, or session) its own loop, so a connection kept across tests
fails with "attached to a different loop". testbed avoids it: the psycopg connection is opened without a
loop (libpq connects synchronously on the private socket, in about a millisecond) and psycopg waits on
whichever loop is running when the test awaits it, so one connection per worker serves every test and every
loop scope; the per-test cost is the final ROLLBACK, sent synchronously at teardown. Nothing here needs an
async fixture, so it works the same under pytest-asyncio (strict or auto mode) and anyio's plugin.

asyncpg connections are bound to their loop: with ``async_driver = "asyncpg"`` each test gets its own
connection, opened in the test's loop at first use and closed on that loop after the test.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any

import psycopg
from psycopg import pq, waiting
from psycopg.conninfo import make_conninfo

_COMMIT_POINT = "testbed_commit"


class TestbedAsyncConnection(psycopg.AsyncConnection[Any]):
    """An AsyncConnection whose commit/rollback stay inside the test's outer transaction (see rollback.py)."""

    __test__ = False
    in_test: bool = False
    _commit_points: int = 0

    @classmethod
    def open_now(cls, conninfo: dict[str, Any]) -> TestbedAsyncConnection:
        """Connect without an event loop; the connection then works in whichever loop awaits it."""
        conn: TestbedAsyncConnection = waiting.wait_conn(cls._connect_gen(make_conninfo(**conninfo)), interval=0.1)
        conn._autocommit = False
        return conn

    async def commit(self) -> None:
        if not self.in_test:
            await super().commit()
            return
        status = self.info.transaction_status
        if status == pq.TransactionStatus.INERROR:
            await self.rollback()  # a real COMMIT of a failed transaction rolls it back
            return
        if status == pq.TransactionStatus.INTRANS:
            await self.execute(f"SAVEPOINT {_COMMIT_POINT}")
            self._commit_points += 1

    async def rollback(self) -> None:
        if self.in_test and self._commit_points:
            await self.execute(f"ROLLBACK TO SAVEPOINT {_COMMIT_POINT}")
            return
        await super().rollback()

    async def close(self) -> None:
        if self.in_test:
            return  # `async with conn` in code under test must not end the worker's connection
        await super().close()

    def begin_test(self) -> None:
        self.in_test = True
        self._commit_points = 0

    def end_test_now(self) -> None:
        """Undo the test's work without an event loop: the real ROLLBACK, sent through libpq."""
        self.in_test = False
        self._commit_points = 0
        if self.closed:
            return
        if self.pgconn.transaction_status != pq.TransactionStatus.IDLE:
            result = self.pgconn.exec_(b"ROLLBACK")
            if result.status != pq.ExecStatus.COMMAND_OK:
                raise psycopg.OperationalError(f"ROLLBACK failed: {result.error_message.decode(errors='replace')}")

    def close_now(self) -> None:
        """Close without an event loop."""
        self.in_test = False
        if not self.closed:
            self.pgconn.finish()


class _CleanupLoop:
    """A private event loop on a thread of its own, for async clean-up from sync teardown code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="testbed-async-cleanup", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


_cleanup: _CleanupLoop | None = None
_cleanup_lock = threading.Lock()


def run_cleanup(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coro`` to completion from sync code (teardown), never touching the test's loop."""
    global _cleanup
    with _cleanup_lock:
        if _cleanup is None:
            _cleanup = _CleanupLoop()
    return _cleanup.run(coro)


class AsyncSessionFactory:
    """SQLAlchemy AsyncSessions on the worker's async test connection (psycopg), one engine per worker.

    ``await session.commit()`` releases a savepoint; the outer transaction is rolled back after the test.
    """

    def __init__(self, conn: TestbedAsyncConnection) -> None:
        from sqlalchemy.ext.asyncio import create_async_engine
        from sqlalchemy.pool import StaticPool

        self.conn = conn

        async def creator() -> TestbedAsyncConnection:
            return self.conn

        self.engine = create_async_engine("postgresql+psycopg://", async_creator=creator, poolclass=StaticPool,
                                          pool_reset_on_return=None)

    def open(self) -> Any:
        from sqlalchemy.ext.asyncio import AsyncSession

        return AsyncSession(bind=self.engine, expire_on_commit=False)

    @staticmethod
    def close(session: Any) -> None:
        """Close a session after its test (from sync teardown code)."""
        run_cleanup(session.close())

    def dispose(self) -> None:
        run_cleanup(self.engine.dispose(close=False))


class AsyncpgTestSession:
    """A SQLAlchemy AsyncSession on asyncpg for one test, commits emulated with savepoints.

    asyncpg connections belong to the loop they were opened in: the engine is per test, connects at first
    use in the test's loop, and is closed in that loop when the test's coroutine returns (``aclose``, which
    the plugin runs at the end of the test; closing the connection rolls its transaction back on the server).
    """

    def __init__(self, url: str, rollback: bool) -> None:
        from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
        from sqlalchemy.pool import StaticPool

        self.in_test = rollback
        self.commit_points = 0
        self.engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://", 1),
                                          poolclass=StaticPool, pool_reset_on_return=None)
        dialect = self.engine.sync_engine.dialect
        real_commit, real_rollback = dialect.do_commit, dialect.do_rollback

        def do_commit(dbapi_connection: Any) -> None:
            if not self.in_test:
                real_commit(dbapi_connection)
                return
            cursor = dbapi_connection.cursor()
            cursor.execute(f"SAVEPOINT {_COMMIT_POINT}")
            cursor.close()
            self.commit_points += 1

        def do_rollback(dbapi_connection: Any) -> None:
            if self.in_test and self.commit_points:
                cursor = dbapi_connection.cursor()
                cursor.execute(f"ROLLBACK TO SAVEPOINT {_COMMIT_POINT}")
                cursor.close()
                return
            real_rollback(dbapi_connection)

        dialect.do_commit = do_commit  # type: ignore[method-assign]
        dialect.do_rollback = do_rollback  # type: ignore[method-assign]
        self.session = AsyncSession(bind=self.engine, expire_on_commit=False)
        self.closed = False

    async def aclose(self) -> None:
        """Close the session and the engine (in the loop the connection belongs to)."""
        if self.closed:
            return
        self.closed = True
        self.in_test = False
        try:
            await self.session.close()
        finally:
            await self.engine.dispose()

    def close(self) -> None:
        """After the test, from sync code: only if the test's coroutine did not run (nothing connected)."""
        if not self.closed:
            run_cleanup(self.aclose())


