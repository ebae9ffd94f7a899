"""Rollback isolation: the test's work happens inside one transaction that is rolled back afterwards.

Code under test may call ``commit()``: on the test's connection a commit becomes a savepoint, and a later
``rollback()`` returns to the last such savepoint, so both behave as the application expects while the
outer transaction still undoes everything. Costs one round trip per test (the final ROLLBACK).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import pq

_COMMIT_POINT = "testbed_commit"


class TestbedConnection(psycopg.Connection[Any]):
    """A psycopg connection whose commit/rollback stay inside the test's outer transaction.

    While a test runs (``in_test``), ``commit()`` sets a savepoint instead of committing, ``rollback()``
    goes back to the last commit point, and ``close()`` is ignored (the session owns the connection).
    """

    __test__ = False
    in_test: bool = False
    _commit_points: int = 0

    def commit(self) -> None:
        if not self.in_test:
            super().commit()
            return
        status = self.info.transaction_status
        if status == pq.TransactionStatus.INERROR:
            # A real COMMIT of a failed transaction rolls it back.
            self.rollback()
            return
        if status == pq.TransactionStatus.INTRANS:
            self.execute(f"SAVEPOINT {_COMMIT_POINT}")
            self._commit_points += 1

    def rollback(self) -> None:
        if self.in_test and self._commit_points:
            self.execute(f"ROLLBACK TO SAVEPOINT {_COMMIT_POINT}")
            return
        super().rollback()

    def close(self) -> None:
        if self.in_test:
            return  # the test's `with connect() as conn` / conn.close() must not end the session connection
        super().close()

    def forget_test(self) -> None:
        """Back to a plain connection (commit/rollback/close real again); the caller ends the transaction."""
        self.in_test = False
        self._commit_points = 0

    def end_test(self) -> None:
        """Undo everything the test did: the real ROLLBACK."""
        self.forget_test()
        if self.closed:
            return
        psycopg.Connection.rollback(self)

    def begin_test(self) -> None:
        if self.autocommit:
            self.autocommit = False
        self.in_test = True
        self._commit_points = 0


class SessionFactory:
    """SQLAlchemy 2 Sessions on the test connection, joined to its outer transaction with savepoints.

    ``session.commit()`` releases a savepoint; the outer transaction (rolled back after the test) is never
    committed. Sessions share the connection with the ``db`` fixture, so both see the same uncommitted
    data. The engine is built once per connection: dialect initialisation costs several queries.
    """

    def __init__(self, conn: TestbedConnection) -> None:
        from sqlalchemy import create_engine
        from sqlalchemy.pool import StaticPool

        self.engine = create_engine(
            "postgresql+psycopg://", creator=lambda: conn, poolclass=StaticPool, pool_reset_on_return=None
        )
        self.engine.connect().close()  # initialise the dialect now, outside any test

    def open(self) -> Any:
        from sqlalchemy.orm import Session

        connection = self.engine.connect()
        outer = connection.begin()
        session = Session(bind=connection, join_transaction_mode="create_savepoint")
        session.info["testbed_connection"] = (connection, outer)
        return session

    @staticmethod
    def close(session: Any) -> None:
        connection, _outer = session.info.pop("testbed_connection")
        session.close()
        # Closing rolls the outer SQLAlchemy transaction back through the test connection's emulated
        # rollback; the one real ROLLBACK comes after, from the rollback isolation itself.
        connection.close()
