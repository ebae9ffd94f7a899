from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from notes.app import app, engine, get_session  # import-time settings: handed over by [tool.testbed.env]


@pytest.fixture
async def client(async_db_session) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    """The API on the test's session: its commits are savepoints, rolled back after the test."""
    app.dependency_overrides[get_session] = lambda: async_db_session
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://notes") as c:
        yield c
    app.dependency_overrides.clear()


@pytest.fixture
async def real_app_client(db_url) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    """The API with its own engine and pool, committing for real (use with isolation="truncate")."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://notes") as c:
        yield c
    await engine.dispose()  # the pool's connections belong to this test's loop
