"""Real concurrency in one line: ``testbed.concurrently(fn, n=10)`` runs ``n`` calls released together.

Every call waits on one barrier and all start at the same moment, on real threads (or as asyncio tasks
for a coroutine function), so a race in the code under test has the widest window the machine gives it.
Every result and every exception comes back, in call order; nothing is swallowed and nothing is raised
for the test: the test decides what the outcomes must be.

For a race that must reproduce on every run, not most runs, interleave two transactions at a chosen
statement instead: :func:`testbed.interleave` (``testbed.isolation.interleave``).
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

from testbed import stacks
from testbed.errors import TestbedError

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0


class ConcurrencyError(TestbedError):
    """Concurrent calls could not be run or did not finish in time."""

    boundary = "concurrency"


@dataclass(frozen=True)
class CallOutcome(Generic[T]):
    """What one of the concurrent calls did: returned ``value`` or raised ``error``."""

    index: int  # 0-based position among the calls
    value: T | None = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def result(self) -> T:
        """The call's return value; re-raises its exception."""
        __tracebackhide__ = True
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]

    def describe(self) -> str:
        if self.error is None:
            return f"call {self.index}: returned {self.value!r}"
        return f"call {self.index}: raised {type(self.error).__name__}: {self.error}"


class Outcomes(Sequence[CallOutcome[T]]):
    """Every call's outcome, in call order (index ``i`` is call ``i``, whatever order they finished in)."""

    def __init__(self, outcomes: Sequence[CallOutcome[T]]) -> None:
        self._outcomes = tuple(outcomes)

    @overload
    def __getitem__(self, i: int) -> CallOutcome[T]: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[CallOutcome[T]]: ...

    def __getitem__(self, i: int | slice) -> CallOutcome[T] | Sequence[CallOutcome[T]]:
        return self._outcomes[i]

    def __len__(self) -> int:
        return len(self._outcomes)

    def __iter__(self) -> Iterator[CallOutcome[T]]:
        return iter(self._outcomes)

    @property
    def values(self) -> list[T]:
        """The return values of the calls that returned, in call order."""
        return [o.value for o in self._outcomes if o.error is None]  # type: ignore[misc]

    @property
    def errors(self) -> list[BaseException]:
        """The exceptions of the calls that raised, in call order."""
        return [o.error for o in self._outcomes if o.error is not None]

    def error_types(self) -> list[str]:
        """Names of the exception types raised, in call order (handy in an assert)."""
        return [type(e).__name__ for e in self.errors]

    def __repr__(self) -> str:
        return "Outcomes([" + ", ".join(o.describe() for o in self._outcomes) + "])"


def _calls(n: int | None, args: Sequence[Any], kwargs: Mapping[str, Any] | None,
           each: Sequence[Sequence[Any]] | None) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    if each is not None:
        if n is not None and n != len(each):
            raise ConcurrencyError(f"n={n} but each= has {len(each)} argument tuples; give one of them.")
        return [(tuple(a), dict(kwargs or {})) for a in each]
    if n is None or n < 1:
        raise ConcurrencyError(f"n={n}: say how many calls to run together (n=10), or give each= their arguments.")
    return [(tuple(args), dict(kwargs or {})) for _ in range(n)]


@overload
def concurrently(  # type: ignore[overload-overlap]  # a coroutine function is also a Callable[..., T]
    fn: Callable[..., Awaitable[T]], n: int | None = None, args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None, *, each: Sequence[Sequence[Any]] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Awaitable[Outcomes[T]]: ...


@overload
def concurrently(fn: Callable[..., T], n: int | None = None, args: Sequence[Any] = (),
                 kwargs: Mapping[str, Any] | None = None, *, each: Sequence[Sequence[Any]] | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> Outcomes[T]: ...


def concurrently(fn: Callable[..., Any], n: int | None = None, args: Sequence[Any] = (),
                 kwargs: Mapping[str, Any] | None = None, *, each: Sequence[Sequence[Any]] | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> Any:
    """Run ``n`` calls of ``fn`` released together by one barrier; return every outcome, in call order.

    ``args``/``kwargs`` are passed to every call; ``each=[(1,), (2,)]`` gives each call its own arguments
    (and sets ``n``). A plain function runs on ``n`` real threads; a coroutine function runs as ``n``
    asyncio tasks and ``concurrently`` returns an awaitable (``await testbed.concurrently(...)`` in an
    async test, ``asyncio.run(testbed.concurrently(...))`` elsewhere). Calls still running after
    ``timeout`` seconds fail with a :class:`ConcurrencyError` showing where each one is stuck.
    """
    calls = _calls(n, args, kwargs, each)
    if inspect.iscoroutinefunction(fn):
        return _concurrently_async(fn, calls, timeout)
    return _concurrently_threads(fn, calls, timeout)


def _concurrently_threads(fn: Callable[..., T], calls: list[tuple[tuple[Any, ...], dict[str, Any]]],
                          timeout: float) -> Outcomes[T]:
    __tracebackhide__ = True
    barrier = threading.Barrier(len(calls))
    outcomes: list[CallOutcome[T] | None] = [None] * len(calls)

    def run(i: int, a: tuple[Any, ...], kw: dict[str, Any]) -> None:
        try:
            barrier.wait(timeout)
        except threading.BrokenBarrierError as exc:  # a sibling could not start: nobody runs
            outcomes[i] = CallOutcome(i, error=exc)
            return
        try:
            outcomes[i] = CallOutcome(i, value=fn(*a, **kw))
        except BaseException as exc:  # every exception is an outcome the test asserts on
            outcomes[i] = CallOutcome(i, error=exc)

    name = getattr(fn, "__qualname__", repr(fn))
    threads = [threading.Thread(target=run, args=(i, a, kw), name=f"testbed-concurrently-{i}-{name}", daemon=True)
               for i, (a, kw) in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    stuck = [(i, t) for i, t in enumerate(threads) if t.is_alive()]
    if stuck:
        where = "\n".join(f"  call {i} ({t.name}) is at:\n{stacks.of_thread(t)}" for i, t in stuck)
        raise ConcurrencyError(
            f"{len(stuck)} of {len(calls)} concurrent call(s) of {name} did not finish within {timeout:g} s "
            f"(a deadlock, a lock or pool slot never released, or a wait with no timeout?):\n{where}"
        )
    return Outcomes([o for o in outcomes if o is not None])


async def _concurrently_async(fn: Callable[..., Awaitable[T]], calls: list[tuple[tuple[Any, ...], dict[str, Any]]],
                              timeout: float) -> Outcomes[T]:
    barrier = asyncio.Barrier(len(calls))

    async def run(i: int, a: tuple[Any, ...], kw: dict[str, Any]) -> CallOutcome[T]:
        await barrier.wait()
        try:
            return CallOutcome(i, value=await fn(*a, **kw))
        except Exception as exc:  # CancelledError (a BaseException) must still cancel
            return CallOutcome(i, error=exc)

    tasks = [asyncio.ensure_future(run(i, a, kw)) for i, (a, kw) in enumerate(calls)]
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    if pending:
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        stuck = sorted(tasks.index(t) for t in pending)
        name = getattr(fn, "__qualname__", repr(fn))
        raise ConcurrencyError(
            f"{len(pending)} of {len(calls)} concurrent task(s) of {name} did not finish within {timeout:g} s "
            f"(calls {', '.join(map(str, stuck))}; cancelled). An await with no timeout, or a lock or pool slot "
            "never released?"
        )
    return Outcomes([t.result() for t in tasks])
