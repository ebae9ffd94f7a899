"""Provoking faults: how often a planted race is caught, and what watching pools costs.

Part 1, races. One testbed PostgreSQL, one table ``accounts(id, balance)``. The planted bug is a READ
COMMITTED read-modify-write (``SELECT balance`` then ``UPDATE ... SET balance = <read + amount>``), each call
on its own connection. A run credits 10 and 20 to 100 concurrently and checks for 130; 110 or 120 means
the race happened (caught). Variants, interleaved per repetition after a warm-up:

- handwritten:    the peer, what a team writes today: two threads and a ``threading.Barrier(2)``
- concurrently_2: ``testbed.concurrently(credit, each=[(10,), (20,)])``
- concurrently_8: ``testbed.concurrently`` with 8 calls (credits 10 x 8; caught when the total is short)
- interleave:     ``testbed.interleave(credit 10, credit 20, pause_first_after="SELECT balance")``

Reported: the share of runs that caught the race and the median wall time of a run (connections included).

Part 2, pool watching: median time of a SQLAlchemy ``engine.connect()`` + close (QueuePool, psycopg) with
and without testbed's PoolWatcher started (checkout stack, last statement), interleaved in blocks.

Run:  .venv/bin/python bench/faults.py [--quick]
The last line is ``RESULT handwritten_caught_pct=... concurrently_2_caught_pct=... concurrently_8_caught_pct=...
interleave_caught_pct=... interleave_ms=... handwritten_ms=... checkout_us=... watched_checkout_us=...
watch_overhead_us=...``. Timings are printed, never asserted. The server started here is stopped here.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable

import psycopg
from sqlalchemy import create_engine

import testbed
from testbed.isolation.pool_pressure import PoolWatcher
from testbed.provision import postgres


def credit(url: str, amount: int) -> None:
    """The planted bug: read, then write what was read plus the amount."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT balance FROM accounts WHERE id = 1").fetchone()
        assert row is not None
        conn.execute("UPDATE accounts SET balance = %s WHERE id = 1", (row[0] + amount,))


def reset(admin: psycopg.Connection) -> None:  # type: ignore[type-arg]
    admin.execute("UPDATE accounts SET balance = 100 WHERE id = 1")


def balance(admin: psycopg.Connection) -> int:  # type: ignore[type-arg]
    row = admin.execute("SELECT balance FROM accounts WHERE id = 1").fetchone()
    assert row is not None
    return int(row[0])


def handwritten(url: str) -> int:
    barrier = threading.Barrier(2)

    def run(amount: int) -> None:
        barrier.wait(10)
        credit(url, amount)

    threads = [threading.Thread(target=run, args=(a,)) for a in (10, 20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return 130


def concurrently_2(url: str) -> int:
    outcomes = testbed.concurrently(credit, each=[(url, 10), (url, 20)])
    assert not outcomes.errors, outcomes
    return 130


def concurrently_8(url: str) -> int:
    outcomes = testbed.concurrently(credit, n=8, args=(url, 10))
    assert not outcomes.errors, outcomes
    return 180


def interleave(url: str) -> int:
    race = testbed.interleave(lambda: credit(url, 10), lambda: credit(url, 20), pause_first_after="SELECT balance")
    assert race.first.ok and race.second.ok, race.describe()
    return 130


VARIANTS: dict[str, Callable[[str], int]] = {"handwritten": handwritten, "concurrently_2": concurrently_2,
                                            "concurrently_8": concurrently_8, "interleave": interleave}


def races(url: str, reps: int) -> dict[str, tuple[float, float]]:
    """Per variant: (share of runs that caught the race, median ms per run)."""
    caught = {name: 0 for name in VARIANTS}
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with psycopg.connect(url, autocommit=True) as admin:
        for run in VARIANTS.values():  # warm-up
            reset(admin)
            run(url)
        for i in range(reps):
            order = list(VARIANTS.items())
            order = order[i % len(order):] + order[:i % len(order)]  # rotate: nobody always goes first
            for name, run in order:
                reset(admin)
                t0 = time.perf_counter()
                expected = run(url)
                times[name].append((time.perf_counter() - t0) * 1000)
                if balance(admin) != expected:
                    caught[name] += 1
    return {name: (100.0 * caught[name] / reps, statistics.median(times[name])) for name in VARIANTS}


def pool_watch(url: str, blocks: int, per_block: int) -> tuple[float, float]:
    """Median microseconds per connect + close, unwatched and watched."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), pool_size=2)

    def block() -> float:
        t0 = time.perf_counter()
        for _ in range(per_block):
            with engine.connect():
                pass
        return (time.perf_counter() - t0) / per_block * 1e6

    block()  # warm-up: the pool's connections exist
    plain: list[float] = []
    watched: list[float] = []
    watcher = PoolWatcher()
    try:
        for _ in range(blocks):
            plain.append(block())
            watcher.start()
            watched.append(block())
            watcher.stop()
    finally:
        watcher.stop()
        engine.dispose()
    return statistics.median(plain), statistics.median(watched)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (under 60 s)")
    args = parser.parse_args()
    reps, blocks, per_block = (20, 5, 500) if args.quick else (100, 11, 2000)
    with postgres() as pg, psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)")
        conn.execute("INSERT INTO accounts VALUES (1, 100)")
        found = races(pg.url, reps)
        plain_us, watched_us = pool_watch(pg.url, blocks, per_block)
    print(f"Races: a READ COMMITTED read-modify-write credited concurrently, {reps} runs per variant")
    print(f"{'variant':<16}{'caught':>10}{'median ms/run':>16}")
    for name, (pct, ms) in found.items():
        print(f"{name:<16}{pct:>9.0f}%{ms:>16.1f}")
    print(f"Pool watching: engine.connect() + close, median of {blocks} blocks of {per_block}")
    print(f"{'unwatched':<16}{plain_us:>10.1f} us\n{'watched':<16}{watched_us:>10.1f} us")
    parts = [f"{name}_caught_pct={pct:.0f}" for name, (pct, _ms) in found.items()]
    parts += [f"{name}_ms={ms:.1f}" for name, (_pct, ms) in found.items()]
    parts += [f"checkout_us={plain_us:.1f}", f"watched_checkout_us={watched_us:.1f}",
              f"watch_overhead_us={watched_us - plain_us:.1f}"]
    print("RESULT " + " ".join(parts))


if __name__ == "__main__":
    main()
