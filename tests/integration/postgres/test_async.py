"""async_db and async_db_session: rollback isolation for async code under pytest-asyncio (strict and auto
modes, function and session loop scopes) and anyio; truncate and clone too."""

from __future__ import annotations

import pytest

SUITE = '''
import pytest
from sqlalchemy import text

{mark}
async def test_a_writes_and_commits(async_db, async_db_session):
    await async_db.execute("insert into customers (name) values ('a')")
    await async_db.commit()                               # a savepoint: undone after the test
    await async_db_session.execute(text("insert into customers (name) values ('b')"))
    await async_db_session.commit()
    n = (await async_db_session.execute(text("select count(*) from customers"))).scalar()
    assert n == 2                                         # the session and the connection share the transaction

{mark}
async def test_b_sees_nothing(async_db):
    cur = await async_db.execute("select count(*) from customers")
    assert await cur.fetchone() == (0,)

{mark}
async def test_c_rollback_goes_to_the_last_commit(async_db):
    await async_db.execute("insert into customers (name) values ('kept')")
    await async_db.commit()
    await async_db.execute("insert into customers (name) values ('dropped')")
    await async_db.rollback()
    cur = await async_db.execute("select name from customers")
    assert await cur.fetchall() == [("kept",)]

{mark}
@pytest.mark.testbed(isolation="truncate")
async def test_d_truncate_commits_for_real(async_db, db_url):
    await async_db.execute("insert into customers (name) values ('t')")
    await async_db.commit()
    import psycopg
    with psycopg.connect(db_url) as other:
        assert other.execute("select count(*) from customers").fetchone() == (1,)

{mark}
@pytest.mark.testbed(isolation="clone")
async def test_e_clone(async_db_session):
    await async_db_session.execute(text("create table scratch (x int)"))
    await async_db_session.commit()

{mark}
async def test_f_clean_after_all(async_db):
    cur = await async_db.execute("select count(*) from customers")
    assert await cur.fetchone() == (0,)
    cur = await async_db.execute("select to_regclass('scratch')")
    assert await cur.fetchone() == (None,)
'''

ASYNCIO = "@pytest.mark.asyncio"


@pytest.mark.parametrize(
    ("mode", "mark", "ini"),
    [
        ("asyncio-strict", ASYNCIO, 'asyncio_mode = "strict"\nasyncio_default_fixture_loop_scope = "function"'),
        ("asyncio-auto", "", 'asyncio_mode = "auto"\nasyncio_default_fixture_loop_scope = "function"'),
        ("asyncio-session-loop", '@pytest.mark.asyncio(loop_scope="session")',
         'asyncio_default_fixture_loop_scope = "session"'),
        ("anyio", "@pytest.mark.anyio", 'asyncio_default_fixture_loop_scope = "function"'),
    ],
)
def test_async_isolation_under_every_runner(project: pytest.Pytester, mode: str, mark: str, ini: str) -> None:
    pytester = project
    (pytester.path / "pyproject.toml").write_text(
        (pytester.path / "pyproject.toml").read_text() + f"\n[tool.pytest.ini_options]\n{ini}\n"
    )
    suite = SUITE.format(mark=mark)
    if mode == "anyio":
        suite += "\n@pytest.fixture\ndef anyio_backend():\n    return 'asyncio'\n"
    pytester.makepyfile(test_async=suite)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-W", "error")
    result.assert_outcomes(passed=6)


def test_a_leaked_async_pool_is_caught(project: pytest.Pytester) -> None:
    project.makepyfile(test_leak='''
import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy import text

ENGINES = []

@pytest.mark.asyncio
@pytest.mark.testbed(isolation="truncate")
async def test_app_pool_left_open(db_url):
    engine = create_async_engine(db_url.replace("postgresql://", "postgresql+asyncpg://"))
    ENGINES.append(engine)
    async with engine.connect() as conn:
        await conn.execute(text("select 1"))
    # forgot: await engine.dispose()
''')
    result = project.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(failed=1)  # the leak is the test's one failure
    result.stdout.fnmatch_lines(["*1 database connection(s) opened by*test_app_pool_left_open are still open*"])


ASYNCPG_SUITE = '''
import pytest
from sqlalchemy import text

{mark}
async def test_a(async_db_session):
    assert async_db_session.bind.dialect.driver == "asyncpg"
    await async_db_session.execute(text("insert into customers (name) values ('a')"))
    await async_db_session.commit()
    await async_db_session.execute(text("insert into customers (name) values ('b')"))
    await async_db_session.rollback()
    n = (await async_db_session.execute(text("select count(*) from customers"))).scalar()
    assert n == 1

{mark}
async def test_b(async_db_session):
    n = (await async_db_session.execute(text("select count(*) from customers"))).scalar()
    assert n == 0
'''


@pytest.mark.parametrize(
    ("mark", "ini"),
    [(ASYNCIO, 'asyncio_default_fixture_loop_scope = "function"'),
     ('@pytest.mark.asyncio(loop_scope="session")', 'asyncio_default_fixture_loop_scope = "session"'),
     ("@pytest.mark.anyio", 'asyncio_default_fixture_loop_scope = "function"')],
    ids=["function-loop", "session-loop", "anyio"],
)
def test_asyncpg_sessions_roll_back_too(project: pytest.Pytester, mark: str, ini: str) -> None:
    path = project.path / "pyproject.toml"
    text = path.read_text().replace("[tool.testbed.postgres]", '[tool.testbed.postgres]\nasync_driver = "asyncpg"')
    path.write_text(text + f"\n[tool.pytest.ini_options]\n{ini}\n")
    suite = ASYNCPG_SUITE.format(mark=mark)
    if "anyio" in mark:
        suite += "\n@pytest.fixture\ndef anyio_backend():\n    return 'asyncio'\n"
    project.makepyfile(test_asyncpg=suite)
    result = project.runpytest_subprocess("-p", "no:randomly", "-W", "error")
    result.assert_outcomes(passed=2)
