"""Pool pressure on a real PostgreSQL: a leaked pool connection named, with where it was checked out."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from testbed import observe
from testbed.isolation.pool_pressure import PoolWatcher, watching

pytestmark = pytest.mark.testbed(isolation="truncate")  # the application's own pool commits for real


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    e = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1), pool_size=2, max_overflow=0,
                      pool_timeout=0.3)
    yield e
    e.dispose()


class Repository:
    """The planted bug: ``report_leaky`` checks out a connection and never gives it back."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.kept: list[object] = []

    def report_leaky(self) -> int:
        conn = self.engine.connect()
        self.kept.append(conn)  # e.g. stored on a request object that outlives the request
        return int(conn.execute(text("SELECT 41 + 1 AS leaky_report")).scalar_one())

    def report_fixed(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text("SELECT 41 + 1 AS leaky_report")).scalar_one())

    def close(self) -> None:
        for conn in self.kept:
            conn.close()  # type: ignore[attr-defined]


def three_reports(repo: Repository, report: str) -> None:
    """What the test of the application does: three requests on a pool of two."""
    for _ in range(3):
        assert getattr(repo, report)() == 42


def test_a_leaked_connection_is_named_at_the_moment_the_pool_times_out(engine: Engine) -> None:
    repo = Repository(engine)
    published: list[observe.BoundaryEvent] = []
    try:
        with observe.listening(published.append), watching() as pools, pytest.raises(PoolTimeoutError) as info:
            three_reports(repo, "report_leaky")
    finally:
        repo.close()
    (report,) = pools.timeouts
    # for the per-test transcript (the plugin's own watcher publishes its snapshot too)
    assert ("sql", "pool timeout", report.text()) in [(e.boundary, e.kind, e.data["report"]) for e in published]
    held = report.held()
    assert len(held) == 2 and all(h.backend_pid for h in held)
    assert {h.last_statement for h in held} == {"SELECT 41 + 1 AS leaky_report"}
    assert {h.state for h in held} == {"idle in transaction"}
    text_ = report.text()
    assert "QueuePool limit of size 2 overflow 0 reached" in text_
    assert "in report_leaky\n        conn = self.engine.connect()" in text_  # the line that checked it out
    for h in held:  # the server's view of the same connections
        # named after this test while testbed's plugin runs it (PGAPPNAME), unnamed otherwise
        assert re.search(rf"- pid {h.backend_pid} (\(no application_name\)|'testbed:[^']*') from 127\.0\.0\.1/32 "
                         r"\[held by QueuePool ", text_), text_
    assert text_ in info.value.__notes__  # on the exception too, for a report outside pytest


def test_the_fixed_code_passes_under_the_same_watch(engine: Engine) -> None:
    repo = Repository(engine)
    with watching() as pools:
        three_reports(repo, "report_fixed")
        assert pools.held() == []
    assert pools.timeouts == []


def test_on_demand_shows_what_is_held_now(engine: Engine, db_url: str) -> None:
    watcher = PoolWatcher().start()
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 'busy'"))
            report = watcher.snapshot(url=db_url)
            (held,) = report.held()
            assert held.last_statement == "SELECT 'busy'" and held.state == "idle in transaction"
            assert report.database == db_url.rsplit("/", 1)[-1]
            assert any(s.pid == held.backend_pid and s.query == "SELECT 'busy'" for s in report.server or ())
        assert watcher.held() == []
    finally:
        watcher.stop()
