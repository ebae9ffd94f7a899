"""The flaky check: rerun a failed test in a fresh process and say what kind of failure it is.

- flaky: it passed on some reruns and failed on others;
- broken: it failed on every rerun (a real failure: fix it, do not quarantine it);
- passes alone: it passed on every rerun, so it failed only after what ran before it in the suite
  (order-dependent: ``testbed bisect`` finds the test that pollutes it), or it is rarely flaky.

The original failure stays a failure: the check adds a verdict to the report (terminal and JUnit), it
never turns a red test green.
"""

from __future__ import annotations

from dataclasses import dataclass

from testbed.hygiene.replay import ReplayError, ReplayOptions, SubprocessReplayer


@dataclass(frozen=True)
class FlakyVerdict:
    """What the reruns of one failed test showed."""

    nodeid: str
    reruns: int
    passed: int
    failed: int
    problem: str = ""  # why the reruns could not run

    @property
    def kind(self) -> str:
        if self.problem:
            return "unchecked"
        if self.passed and self.failed:
            return "flaky"
        if self.failed:
            return "broken"
        if self.passed:
            return "passes alone"
        return "unchecked"

    def describe(self) -> str:
        ran = self.passed + self.failed
        if self.kind == "flaky":
            return f"flaky: passed {self.passed} of {ran} reruns in a fresh process"
        if self.kind == "broken":
            return f"broken: failed all {ran} reruns in a fresh process"
        if self.kind == "passes alone":
            return (f"passes alone: passed all {ran} reruns in a fresh process, so it failed only after the tests "
                    f"that ran before it (find the one with `testbed bisect '{self.nodeid}'`) or it fails rarely")
        return f"not checked: {self.problem or 'the reruns were all skipped'}"

    def to_dict(self) -> dict[str, object]:
        return {"nodeid": self.nodeid, "reruns": self.reruns, "passed": self.passed, "failed": self.failed,
                "problem": self.problem}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> FlakyVerdict:
        return cls(str(data["nodeid"]), int(str(data["reruns"])), int(str(data["passed"])),
                   int(str(data["failed"])), str(data.get("problem", "")))


def check(nodeid: str, reruns: int, options: ReplayOptions, *, timeout: float = 300.0) -> FlakyVerdict:
    """Run ``nodeid`` ``reruns`` times in one new pytest process and count how it ended."""
    try:
        result = SubprocessReplayer(options, timeout=timeout).run([nodeid] * reruns)
    except ReplayError as exc:
        return FlakyVerdict(nodeid, reruns, 0, 0, str(exc).splitlines()[0])
    outcomes = result.outcomes(nodeid)
    return FlakyVerdict(nodeid, reruns, outcomes.count("passed"), outcomes.count("failed"))
