from __future__ import annotations

import pytest
from notes.app import Note
from sqlalchemy import func, select


async def test_create_and_list(client, async_db_session) -> None:  # type: ignore[no-untyped-def]
    r = await client.post("/notes", json={"title": "first", "body": "hello"})
    assert r.status_code == 201
    assert (await client.get("/notes")).json() == [{"id": r.json()["id"], "title": "first"}]
    assert await async_db_session.scalar(select(func.count()).select_from(Note)) == 1


async def test_starts_empty_again(async_db_session) -> None:  # type: ignore[no-untyped-def]
    assert await async_db_session.scalar(select(func.count()).select_from(Note)) == 0


async def test_a_duplicate_title_is_409_and_the_session_still_works(client) -> None:  # type: ignore[no-untyped-def]
    assert (await client.post("/notes", json={"title": "same"})).status_code == 201
    assert (await client.post("/notes", json={"title": "same"})).status_code == 409
    assert len((await client.get("/notes")).json()) == 1


@pytest.mark.testbed(isolation="truncate")
async def test_the_real_engine_commits_for_real(real_app_client, async_db) -> None:  # type: ignore[no-untyped-def]
    assert (await real_app_client.post("/notes", json={"title": "committed"})).status_code == 201
    cur = await async_db.execute("select count(*) from notes")
    assert await cur.fetchone() == (1,)
