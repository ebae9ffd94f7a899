"""testbed.interleave on MariaDB/MySQL through SQLAlchemy + PyMySQL: the lost update reproduces, and a
SELECT ... FOR UPDATE fix is seen waiting in InnoDB instead of hanging the test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text

import testbed

pytestmark = pytest.mark.testbed(isolation="clone")


@pytest.fixture
def engine(mysql_url: str) -> Iterator[Engine]:
    e = create_engine(mysql_url.replace("mysql://", "mysql+pymysql://", 1), pool_size=2)
    with e.begin() as conn:
        conn.execute(text("CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL) ENGINE=InnoDB"))
        conn.execute(text("INSERT INTO accounts VALUES (1, 100)"))
    yield e
    e.dispose()


def add_credit(engine: Engine, amount: int, lock: str) -> None:
    with engine.begin() as conn:
        current = conn.execute(text(f"SELECT balance FROM accounts WHERE id = 1{lock}")).scalar_one()
        conn.execute(text("UPDATE accounts SET balance = :b WHERE id = 1"), {"b": current + amount})


def balance(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT balance FROM accounts WHERE id = 1")).scalar_one())


@pytest.mark.parametrize(("lock", "expected", "waited"), [("", 110, False), (" FOR UPDATE", 130, True)],
                         ids=["read-modify-write", "for-update"])
def test_interleaved_credits(engine: Engine, lock: str, expected: int, waited: bool) -> None:
    race = testbed.interleave(lambda: add_credit(engine, 10, lock), lambda: add_credit(engine, 20, lock),
                              pause_first_after="SELECT balance", timeout=20)
    assert race.first.ok and race.second.ok, race.describe()
    assert race.second_waited_for_first is waited
    assert balance(engine) == expected  # 110: the lost update, every run; 130 with the row lock
