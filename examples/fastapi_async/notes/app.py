"""A small notes API: FastAPI + SQLAlchemy 2 asyncio (asyncpg). Settings come from the environment, read once
at import time (pydantic-settings style): tests hand them over with [tool.testbed.env]."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel
from sqlalchemy import DateTime, String, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

DATABASE_URL = os.environ["DATABASE_URL"]  # fails at import without it, as real apps do
engine = create_async_engine(DATABASE_URL, pool_size=3)
Sessions = async_sessionmaker(engine, expire_on_commit=False)


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String, unique=True)
    body: Mapped[str] = mapped_column(String, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class NoteIn(BaseModel):
    title: str
    body: str = ""


async def get_session() -> AsyncIterator[AsyncSession]:
    async with Sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
app = FastAPI()


@app.post("/notes", status_code=201)
async def create_note(note: NoteIn, session: SessionDep) -> dict[str, object]:
    row = Note(title=note.title, body=note.body)
    session.add(row)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise HTTPException(409, f"a note titled {note.title!r} exists") from None
    return {"id": row.id, "title": row.title}


@app.get("/notes")
async def list_notes(session: SessionDep) -> list[dict[str, object]]:
    rows = (await session.execute(select(Note).order_by(Note.id))).scalars()
    return [{"id": n.id, "title": n.title} for n in rows]
