"""testbed.concurrently: n calls released together, every outcome returned in call order."""

from __future__ import annotations

import asyncio
import threading

import pytest

import testbed
from testbed.concurrency import ConcurrencyError


def test_every_call_runs_at_once_on_its_own_thread() -> None:
    inside = threading.Barrier(8)  # passes only if all 8 calls are running at the same time

    def call(x: int) -> str:
        inside.wait(timeout=10)
        return threading.current_thread().name

    outcomes = testbed.concurrently(call, n=8, args=(1,))
    assert len(outcomes) == 8 and all(o.ok for o in outcomes)
    assert len(set(outcomes.values)) == 8


def test_results_and_exceptions_come_back_in_call_order() -> None:
    def call(i: int) -> int:
        if i % 2:
            raise ValueError(f"odd {i}")
        return i * 10

    outcomes = testbed.concurrently(call, each=[(i,) for i in range(5)])
    assert [o.index for o in outcomes] == [0, 1, 2, 3, 4]
    assert outcomes.values == [0, 20, 40]
    assert [str(e) for e in outcomes.errors] == ["odd 1", "odd 3"]
    assert outcomes.error_types() == ["ValueError", "ValueError"]
    assert outcomes[2].result() == 20
    with pytest.raises(ValueError, match="odd 1"):
        outcomes[1].result()


def test_a_check_then_act_race_in_plain_python_shows_up() -> None:
    # The planted bug: a check-then-act on shared state without a lock. Released together, every call
    # passes the check before any of them acts.
    seats = {"left": 1}
    checked = threading.Barrier(4)

    def book() -> bool:
        if seats["left"] > 0:
            checked.wait(timeout=10)  # widen the window deterministically for the test of the tool
            seats["left"] -= 1
            return True
        return False

    outcomes = testbed.concurrently(book, n=4)
    assert outcomes.values == [True, True, True, True]
    assert seats["left"] == -3


def test_n_or_each_is_required_and_must_agree() -> None:
    with pytest.raises(ConcurrencyError, match="say how many calls"):
        testbed.concurrently(lambda: None)
    with pytest.raises(ConcurrencyError, match="n=3 but each= has 2"):
        testbed.concurrently(lambda x: x, n=3, each=[(1,), (2,)])


def test_a_call_that_hangs_is_named_with_where_it_is_stuck() -> None:
    never = threading.Event()

    def hang() -> None:
        never.wait()

    try:
        with pytest.raises(ConcurrencyError) as info:
            testbed.concurrently(hang, n=2, timeout=0.2)
    finally:
        never.set()
    text = str(info.value)
    assert "2 of 2 concurrent call(s) of test_a_call_that_hangs_is_named_with_where_it_is_stuck.<locals>.hang" in text
    assert "never.wait()" in text  # the line each thread is blocked on


def test_coroutine_functions_run_as_tasks_released_together() -> None:
    async def call(i: int) -> int:
        await asyncio.sleep(0)
        if i == 2:
            raise KeyError(i)
        return i

    async def main() -> testbed.concurrency.Outcomes[int]:
        started: list[int] = []

        async def tracked(i: int) -> int:
            started.append(i)
            await asyncio.sleep(0)
            assert len(started) == 4  # every task started before any went on
            return await call(i)

        return await testbed.concurrently(tracked, each=[(i,) for i in range(4)])

    outcomes = asyncio.run(main())
    assert outcomes.values == [0, 1, 3]
    assert outcomes.error_types() == ["KeyError"]


def test_a_hanging_task_is_cancelled_and_named() -> None:
    async def hang() -> None:
        await asyncio.Event().wait()

    with pytest.raises(ConcurrencyError, match="2 of 2 concurrent task"):
        asyncio.run(testbed.concurrently(hang, n=2, timeout=0.1))
