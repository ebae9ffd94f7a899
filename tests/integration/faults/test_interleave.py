"""testbed.interleave on a real PostgreSQL: races that reproduce on every run, and the fixes that end them.

Each planted bug is a function an application could have; the same test body runs against the buggy and the
fixed version: it must fail on the first and pass on the second, every time.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
from sqlalchemy import create_engine, text

import testbed
from testbed.concurrency import ConcurrencyError

pytestmark = pytest.mark.testbed(isolation="clone")  # the code under test commits on its own connections

SCHEMA = """
CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL);
INSERT INTO accounts VALUES (1, 100);
CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL);
"""


@pytest.fixture
def url(db_url: str) -> str:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(SCHEMA)
    return db_url


def balance(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT balance FROM accounts WHERE id = 1").fetchone()
        assert row is not None
        return int(row[0])


# -- lost update under READ COMMITTED ------------------------------------------------------------------

def add_credit_read_modify_write(url: str, amount: int) -> None:  # the planted bug
    with psycopg.connect(url) as conn:
        (current,) = conn.execute("SELECT balance FROM accounts WHERE id = 1").fetchone()  # type: ignore[misc]
        conn.execute("UPDATE accounts SET balance = %s WHERE id = 1", (current + amount,))


def add_credit_for_update(url: str, amount: int) -> None:  # a fix: the read locks the row
    with psycopg.connect(url) as conn:
        (current,) = conn.execute(  # type: ignore[misc]
            "SELECT balance FROM accounts WHERE id = 1 FOR UPDATE").fetchone()
        conn.execute("UPDATE accounts SET balance = %s WHERE id = 1", (current + amount,))


def add_credit_atomic(url: str, amount: int) -> None:  # another fix: no read at all
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE accounts SET balance = balance + %s WHERE id = 1", (amount,))


def two_credits_add_up(url: str, add_credit: Callable[[str, int], None]) -> testbed.isolation.interleave.Interleaved:
    """The test a team would write: two concurrent credits of 10 and 20 on 100 end at 130."""
    race = testbed.interleave(lambda: add_credit(url, 10), lambda: add_credit(url, 20),
                              pause_first_after="SELECT balance")
    assert race.first.ok and race.second.ok, race.describe()
    assert balance(url) == 130, race.describe()
    return race


def test_a_lost_update_under_read_committed_reproduces_every_time(url: str) -> None:
    for _ in range(3):  # not one run in eight: every run
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE accounts SET balance = 100")
        with pytest.raises(AssertionError, match="assert 110 == 130"):
            two_credits_add_up(url, add_credit_read_modify_write)


def test_select_for_update_makes_the_second_wait_and_the_credits_add_up(url: str) -> None:
    race = two_credits_add_up(url, add_credit_for_update)
    assert race.paused_after == "SELECT balance FROM accounts WHERE id = 1 FOR UPDATE"
    assert race.second_waited_for_first  # seen on the server: the fix serialises the two, nothing hangs


def test_an_atomic_update_has_no_read_to_pause_after(url: str) -> None:
    race = two_credits_add_up(url, add_credit_atomic)
    assert not race.paused and "first never ran a matching statement" in race.describe()


# -- isolation levels ----------------------------------------------------------------------------------

def add_credit_repeatable_read(url: str, amount: int, retries: int = 0) -> int:
    """Read-modify-write under REPEATABLE READ; retried on serialization failures ``retries`` times."""
    for attempt in range(retries + 1):
        try:
            with psycopg.connect(url) as conn:
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                (current,) = conn.execute("SELECT balance FROM accounts WHERE id = 1").fetchone()  # type: ignore[misc]
                conn.execute("UPDATE accounts SET balance = %s WHERE id = 1", (current + amount,))
            return attempt
        except psycopg.errors.SerializationFailure:
            if attempt == retries:
                raise
    raise AssertionError("unreachable")


def test_repeatable_read_turns_the_lost_update_into_a_serialization_failure(url: str) -> None:
    race = testbed.interleave(lambda: add_credit_repeatable_read(url, 10), lambda: add_credit_repeatable_read(url, 20),
                              pause_first_after="SELECT balance")
    assert isinstance(race.first.error, psycopg.errors.SerializationFailure)
    assert race.second.value == 0
    assert balance(url) == 120  # the second's credit only: the application must retry


def test_a_retry_on_serialization_failure_fixes_it(url: str) -> None:
    race = testbed.interleave(lambda: add_credit_repeatable_read(url, 10, retries=3),
                              lambda: add_credit_repeatable_read(url, 20, retries=3),
                              pause_first_after="SELECT balance")
    assert race.first.value == 1  # the first retried once (its second read is not paused again)
    assert balance(url) == 130


# -- check-then-insert ---------------------------------------------------------------------------------

def register_check_then_insert(url: str, email: str) -> str:  # the planted bug
    with psycopg.connect(url) as conn:
        if conn.execute("SELECT 1 FROM users WHERE email = %s", (email,)).fetchone():
            return "exists"
        conn.execute("INSERT INTO users (email) VALUES (%s)", (email,))
        return "created"


def register_with_unique_index(url: str, email: str) -> str:  # the fix: the database decides
    with psycopg.connect(url) as conn:
        conn.execute("CREATE UNIQUE INDEX IF NOT EXISTS users_email ON users (email)")
        conn.commit()
        if conn.execute("SELECT 1 FROM users WHERE email = %s", (email,)).fetchone():
            return "exists"
        try:
            conn.execute("INSERT INTO users (email) VALUES (%s)", (email,))
            conn.commit()
        except psycopg.errors.UniqueViolation:
            return "exists"
        return "created"


def one_user_per_email(url: str, register: Callable[[str, str], str]) -> None:
    race = testbed.interleave(lambda: register(url, "sam@example.com"), lambda: register(url, "sam@example.com"),
                              pause_first_after="SELECT 1 FROM users")
    with psycopg.connect(url) as conn:
        count = conn.execute("SELECT count(*) FROM users").fetchone()[0]  # type: ignore[index]
    assert count == 1, race.describe()
    assert sorted([race.first.value, race.second.value]) == ["created", "exists"]


def test_check_then_insert_inserts_twice_every_time(url: str) -> None:
    with pytest.raises(AssertionError, match="assert 2 == 1"):
        one_user_per_email(url, register_check_then_insert)


def test_a_unique_index_makes_check_then_insert_safe(url: str) -> None:
    one_user_per_email(url, register_with_unique_index)


# -- SQLAlchemy and the plumbing -----------------------------------------------------------------------

def test_sqlalchemy_sessions_are_paused_the_same_way(url: str) -> None:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), pool_size=2)
    try:
        def add_credit(amount: int) -> None:
            with engine.begin() as conn:
                current = conn.execute(text("SELECT balance FROM accounts WHERE id = 1")).scalar_one()
                conn.execute(text("UPDATE accounts SET balance = :b WHERE id = 1"), {"b": current + amount})

        race = testbed.interleave(lambda: add_credit(10), lambda: add_credit(20), pause_first_after="from accounts")
        assert race.paused_after == "SELECT balance FROM accounts WHERE id = 1"
        assert balance(url) == 110  # the lost update, through the ORM's engine and pool
    finally:
        engine.dispose()


def test_a_second_that_cannot_finish_is_named_with_its_stack(url: str) -> None:
    # The second needs a pool slot the paused first holds: no lock on the server, so nothing to detect.
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), pool_size=1, max_overflow=0,
                           pool_timeout=30)
    try:
        def read() -> None:
            with engine.connect() as conn:
                conn.execute(text("SELECT balance FROM accounts"))

        with pytest.raises(ConcurrencyError) as info:
            testbed.interleave(read, read, pause_first_after="SELECT balance", timeout=0.5)
        text_ = str(info.value)
        assert "second did not finish while first was paused" in text_
        assert "second is at:" in text_ and "engine.connect()" in text_
    finally:
        engine.dispose()


def test_only_one_interleaving_at_a_time(url: str) -> None:
    inner: list[BaseException] = []

    def nested() -> None:
        try:
            testbed.interleave(lambda: None, lambda: None, pause_first_after="x")
        except ConcurrencyError as exc:
            inner.append(exc)

    testbed.interleave(nested, lambda: None, pause_first_after="never matches")
    assert "another interleaving is running" in str(inner[0])
