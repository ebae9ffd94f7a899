"""The examples of README's "Provoking faults" section, as printed there (so they never rot). The tests that
show each one failing on its planted bug are test_redelivery.py, test_interleave.py and test_pool_pressure*.py."""

from __future__ import annotations

import psycopg
import pytest
import redis

import testbed


class Ledger:
    """The application's side effect, in Redis: credit a payment once."""

    def __init__(self, url: str) -> None:
        self.r = redis.Redis.from_url(url)

    def credit(self, payment: dict) -> None:  # type: ignore[type-arg]
        if self.r.set(f"applied:{payment['paymentId']}", 1, nx=True):  # without this check: 200
            self.r.incrby("balance", payment["amount"])

    def balance(self) -> int:
        return int(self.r.get("balance") or 0)


def test_a_payment_redelivered_after_a_crash_is_credited_once(events, redis_url):
    ledger = Ledger(redis_url)
    consumer = events.consume("payments", lambda d: ledger.credit(d.payload), backend="redis-stream",
                              faults=["crash-before-ack"])
    events.publish("payments", {"paymentId": "p-1", "amount": 100}, backend="redis-stream")
    consumer.wait_acked(1)                    # after the crash and the redelivery
    assert ledger.balance() == 100            # 200 when credit() is not idempotent


class StatusView:
    ORDER = ["created", "paid", "shipped"]

    def __init__(self) -> None:
        self.status = "created"

    def apply(self, event: dict) -> None:  # type: ignore[type-arg]
        if self.ORDER.index(event["status"]) > self.ORDER.index(self.status):  # last-one-wins: "created"
            self.status = event["status"]


def test_the_status_never_goes_back(events, nats):
    nats.jetstream_api("STREAM.CREATE.ORDERS", {"name": "ORDERS", "subjects": ["orders.>"]})
    view = StatusView()
    consumer = events.consume("orders.status", lambda d: view.apply(d.payload), backend="jetstream")
    events.inject("orders.status", [{"status": s} for s in ("created", "paid", "shipped")], backend="jetstream")
    consumer.wait_acked(6)                    # shipped, paid, created, then each again
    assert view.status == "shipped"


SCHEMA = """
CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL);
INSERT INTO accounts VALUES (1, 100);
CREATE TABLE users (id serial PRIMARY KEY, email text UNIQUE NOT NULL);
"""


@pytest.fixture
def url(db_url: str) -> str:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(SCHEMA)
    return db_url


def scalar(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute(sql).fetchone()[0])  # type: ignore[index]


def add_credit(url: str, amount: int) -> None:
    with psycopg.connect(url) as conn:
        (balance,) = conn.execute("SELECT balance FROM accounts WHERE id = 1 FOR UPDATE").fetchone()  # type: ignore
        conn.execute("UPDATE accounts SET balance = %s WHERE id = 1", (balance + amount,))


@pytest.mark.testbed(isolation="clone")
def test_two_credits_add_up(url):
    race = testbed.interleave(lambda: add_credit(url, 10), lambda: add_credit(url, 20),
                              pause_first_after="SELECT balance")
    assert scalar(url, "SELECT balance FROM accounts") == 130, race.describe()  # 110 without FOR UPDATE


def signup(url: str, email: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO users (email) VALUES (%s) ON CONFLICT (email) DO NOTHING", (email,))


@pytest.mark.testbed(isolation="clone")
def test_ten_signups_for_one_email_make_one_account(url):
    outcomes = testbed.concurrently(signup, n=10, args=(url, "sam@example.com"))
    assert outcomes.errors == []
    assert scalar(url, "SELECT count(*) FROM users") == 1
