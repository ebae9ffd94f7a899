"""Polluter bisection: which earlier test makes TEST_ID fail?

Given the tests that ran before the failure on the same worker (the order record), bisection keeps the
half of them after which the test still fails, in O(log n) replays: first the test alone (it must pass,
or the failure has nothing to do with order), then halving, trusting the record that it failed after all
of them (when it does not reproduce, the last step shows it and one more replay says which it was).
Where the isolation layer recorded that an earlier test left data or connections behind, that test is
the suspect and two replays confirm it, without halving.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from testbed.errors import TestbedError
from testbed.hygiene.order import OrderRecord, Pollution, order_folder, read_record
from testbed.hygiene.replay import ReplayOptions, replayer


class BisectError(TestbedError):
    """Bisection cannot start: no record of the test, or no run to replay."""

    boundary = "bisect"


@dataclass
class BisectResult:
    """What bisection found, and how many replays it took."""

    victim: str
    verdict: str  # "polluter", "fails alone", "does not reproduce", "needs several tests"
    polluter: str | None = None
    runs: int = 0
    remaining: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.verdict == "polluter":
            return f"the polluting test is: {self.polluter} (found in {self.runs} runs)"
        if self.verdict == "fails alone":
            return (f"{self.victim} fails when it runs alone: it does not depend on order. Run it alone to debug it "
                    "(or `pytest --testbed-flaky-check=3` to see whether it is flaky).")
        if self.verdict == "does not reproduce":
            return (f"{self.victim} passes after the {len(self.remaining)} tests that ran before it: the failure "
                    "does not reproduce in this order, so it is flaky or depends on something outside the test "
                    "run (time, network, a server's state). Try `pytest --testbed-flaky-check=5`.")
        return (f"no single test makes {self.victim} fail; it fails after these {len(self.remaining)} together "
                f"(found in {self.runs} runs): " + ", ".join(self.remaining[:10])
                + (" ..." if len(self.remaining) > 10 else ""))


def find_polluter(
    victim: str,
    candidates: Sequence[str],
    fails_after: Callable[[list[str]], bool],
    *,
    suspect: str | None = None,
    say: Callable[[str], None] = lambda line: None,
    max_runs: int = 60,
) -> BisectResult:
    """Bisect ``candidates`` (in run order) to the one after which ``victim`` fails.

    ``fails_after(tests)`` replays ``tests`` then the victim and says whether the victim failed.
    """
    result = BisectResult(victim, "polluter")

    def run(tests: list[str]) -> bool:
        result.runs += 1
        return fails_after(tests)

    say(f"checking that {victim} passes alone ...")
    if run([]):
        result.verdict = "fails alone"
        return result
    if suspect is not None and suspect in candidates:
        say(f"the isolation layer recorded that {suspect} left something behind; checking it ...")
        if run([suspect]):
            result.polluter = suspect
            return result
        say("-> it is not the cause; bisecting")
    remaining = list(candidates)
    # The recorded run failed after exactly these tests: trust that instead of spending a run on it. If the
    # failure does not reproduce, the end of the halving shows it, and only then does it cost a run more.
    verified = False
    while len(remaining) > 1:
        half = remaining[: len(remaining) // 2]
        say(f"- {len(remaining)} candidates left; trying the first {len(half)} ...")
        if run(half):
            remaining, verified = half, True
        else:
            remaining, verified = remaining[len(half):], False
    # With one polluter, "the first half passes" means the second half fails; check that on the last step
    # only, where it matters, instead of on every step.
    if not verified and not run(remaining):
        say(f"checking that it fails after all the {len(candidates)} tests that ran before it ...")
        result.remaining = list(candidates)
        if not run(list(candidates)):
            result.verdict = "does not reproduce"
            return result
        say("-> no single test does it; narrowing down the smallest set of tests that does ...")
        result.verdict = "needs several tests"
        result.remaining = _smallest_failing_set(list(candidates), run, max_runs=max_runs - result.runs)
        return result
    result.polluter = remaining[0]
    return result


def _smallest_failing_set(tests: list[str], run: Callable[[list[str]], bool], *, max_runs: int) -> list[str]:
    """Drop chunks of ``tests`` while the victim still fails after the rest (delta debugging's reduction
    to a complement), down to a set from which no single chunk can go; at most ``max_runs`` replays."""
    chunks, runs = 2, 0
    while len(tests) >= 2 and runs < max_runs:
        size = -(-len(tests) // chunks)
        for start in range(0, len(tests), size):
            rest = tests[:start] + tests[start + size:]
            runs += 1
            if rest and run(rest):
                tests, chunks = rest, max(chunks - 1, 2)
                break
            if runs >= max_runs:
                break
        else:
            if chunks >= len(tests):
                break
            chunks = min(len(tests), chunks * 2)
    return tests


def _suspect(pollution: list[Pollution], before: int) -> str | None:
    recorded = [p for p in pollution if p.position <= before]
    return recorded[-1].nodeid if recorded else None


def _did_you_mean(victim: str, record: OrderRecord) -> str:
    known = sorted({t for w in record.workers.values() for t in w.tests})
    close = difflib.get_close_matches(victim, known, n=1, cutoff=0.6)
    if close:
        return f" Did you mean {close[0]}?"
    failed = record.failed()
    return f" Tests that failed in that run: {', '.join(failed[:5])}." if failed else ""


def _warm_services(root: Path, stack: ExitStack, say: Callable[[str], None]) -> dict[str, str]:
    """Start the project's PostgreSQL once for all replays; the env that points the replays at it."""
    from testbed.config import load_settings

    settings = load_settings(root)
    if "postgres" not in settings.services and "postgres" not in settings.engines:
        return {}
    pg = settings.service("postgres")
    if pg.runner != "local":
        return {}
    from testbed.provision import start_postgres

    say("starting PostgreSQL once for every replay ...")
    server = start_postgres(pg, settings.root)
    stack.callback(server.stop)
    return {"TESTBED_POSTGRES_RUNNER": "existing", "TESTBED_POSTGRES_URL": server.endpoint().database_url("postgres")}


def bisect(
    root: Path,
    victim: str,
    *,
    cache_dir: Path,
    worker: str | None = None,
    warm: bool = True,
    extra_args: Sequence[str] = (),
    say: Callable[[str], None] = print,
) -> BisectResult:
    """Replay the recorded order of ``victim``'s worker and bisect the tests before it."""
    folder = order_folder(cache_dir)
    record = read_record(folder)
    if not record.workers:
        raise BisectError(
            f"no order record in {folder}: run the suite once with testbed installed (it records the order of "
            "every run), then run `testbed bisect` again."
        )
    if worker is not None:
        order = record.workers.get(worker)
        if order is None:
            raise BisectError(f"no worker {worker!r} in the last run; workers: {', '.join(record.workers)}.")
        if victim not in order.tests:
            raise BisectError(f"{victim} did not run on {worker} in the last run.{_did_you_mean(victim, record)}")
    else:
        found = record.worker_of(victim)
        if found is None:
            raise BisectError(f"{victim} did not run in the last recorded run.{_did_you_mean(victim, record)}")
        order = found
    candidates = order.before(victim)
    outcome = order.outcomes.get(victim, "?")
    seed = record.run.get("seed")
    say(f"{victim} {outcome} on {order.worker} after {len(candidates)} tests"
        + (f" (pytest-randomly seed {seed})" if seed is not None else ""))
    if not candidates:
        say("nothing ran before it on that worker: there is nothing to bisect.")
        return BisectResult(victim, "fails alone" if outcome == "failed" else "does not reproduce")
    with ExitStack() as stack:
        env = _warm_services(root, stack, say) if warm else {}
        options = ReplayOptions(root=root, seed=seed if isinstance(seed, int) else None, extra_args=extra_args,
                                env=env)
        runner = replayer(options, warm=warm)

        def fails_after(tests: list[str]) -> bool:
            return runner.run([*tests, victim]).failed(victim)

        result = find_polluter(victim, candidates, fails_after,
                               suspect=_suspect(order.pollution, len(candidates)), say=say)
    return result
