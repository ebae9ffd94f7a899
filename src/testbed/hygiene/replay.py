"""Replays: run a given list of test ids, in exactly that order, in a fresh pytest process.

Bisection and the flaky check are both "run these tests in this order, in a process nothing else ran
in, and tell me how each ended". The pytest side is ``--testbed-replay=SPEC`` (the hygiene plugin keeps
only the listed tests, in the listed order, repeats included, and writes each outcome to the spec's
results file); this module writes the spec and starts the process.

A pytest process spends most of its start in imports (plugins, Faker through pytest-randomly, drivers:
seconds on a busy machine), and bisection needs a dozen processes. ``WarmReplayer`` pays that once: it
imports pytest and every installed plugin, then forks a child per replay. The child has a fresh copy of a
process that never ran a test, so pollution cannot carry from one replay to the next.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from testbed.errors import TestbedError

# Environment of a pytest that ran us (an xdist worker, a test) that must not leak into a replay.
_INHERITED_NOISE = ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID",
                    "PYTEST_CURRENT_TEST")


class ReplayError(TestbedError):
    """A replay run did not produce results (a usage error, a collection error, a crash)."""

    boundary = "replay"


@dataclass(frozen=True)
class ReplayResult:
    """How each replayed test ended, in run order (a test listed twice appears twice)."""

    results: tuple[tuple[str, str, str], ...]  # (nodeid, outcome, one-line message)
    exit_code: int
    output: str = ""

    def outcomes(self, nodeid: str) -> list[str]:
        return [outcome for test, outcome, _ in self.results if test == nodeid]

    def failed(self, nodeid: str) -> bool:
        """Whether the (last run of) ``nodeid`` failed."""
        found = self.outcomes(nodeid)
        if not found:
            raise ReplayError(f"the replay did not run {nodeid}; its output ends with:\n{self.output[-2000:]}")
        return found[-1] == "failed"

    def message(self, nodeid: str) -> str:
        return next((msg for test, outcome, msg in reversed(self.results) if test == nodeid and msg), "")


@dataclass
class ReplayOptions:
    """How to start pytest for a replay: where, with which seed, with which extra arguments."""

    root: Path
    seed: int | None = None  # pytest-randomly's seed of the recorded run: same reseeding of `random`
    extra_args: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)

    def pytest_args(self, tests: Sequence[str], spec: Path) -> list[str]:
        files = list(dict.fromkeys(t.split("::", 1)[0] for t in tests))
        # The replay's cache is its own: the user's lastfailed, seed and order record stay as they were.
        return [*files, f"--testbed-replay={spec}", "-o", f"cache_dir={spec.parent / 'cache'}", "-q", "-q",
                *self.plugin_switches()]

    def plugin_switches(self) -> list[str]:
        args: list[str] = []
        if importlib.util.find_spec("pytest_randomly") is not None:
            if self.seed is None:
                args += ["-p", "no:randomly"]
            else:
                args += ["-p", "randomly", f"--randomly-seed={self.seed}", "--randomly-dont-reorganize"]
        if importlib.util.find_spec("xdist") is not None:
            args += ["-n", "0"]  # one process, in our order, whatever addopts say
        # A warm replay imported the plugins before pytest could rewrite their asserts; pytest says so with a
        # warning that a project's filterwarnings = error would turn into a failed start.
        args += ["-W", "ignore::pytest.PytestAssertRewriteWarning"]
        return [*args, *self.extra_args]

    def child_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _INHERITED_NOISE}
        env.update(self.env)
        return env


def write_spec(folder: Path, tests: Sequence[str]) -> Path:
    spec = folder / "replay.json"
    spec.write_text(json.dumps({"tests": list(tests), "results": str(folder / "results.json")}), encoding="utf-8")
    return spec


def read_results(folder: Path, exit_code: int, output: str) -> ReplayResult:
    path = folder / "results.json"
    if not path.is_file():
        raise ReplayError(
            f"pytest exited with code {exit_code} before running the replayed tests (a usage or collection "
            f"error?); its output ends with:\n{output[-3000:]}"
        )
    data = json.loads(path.read_text(encoding="utf-8"))
    results = tuple((str(t), str(o), str(m)) for t, o, m in data["results"])
    return ReplayResult(results, exit_code, output)


class SubprocessReplayer:
    """Each replay in a new ``python -m pytest`` process: slow to start, shares nothing."""

    def __init__(self, options: ReplayOptions, *, timeout: float = 900.0) -> None:
        self.options = options
        self.timeout = timeout
        self.runs = 0

    def run(self, tests: Sequence[str]) -> ReplayResult:
        self.runs += 1
        with tempfile.TemporaryDirectory(prefix="testbed-replay-") as tmp:
            folder = Path(tmp)
            spec = write_spec(folder, tests)
            try:
                proc = subprocess.run(
                    [sys.executable, "-m", "pytest", *self.options.pytest_args(tests, spec)],
                    cwd=self.options.root, env=self.options.child_env(), stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=self.timeout,
                )
            except subprocess.TimeoutExpired as exc:
                raise ReplayError(f"the replay did not finish within {self.timeout:.0f} s (a hung test?)") from exc
            return read_results(folder, proc.returncode, proc.stdout)

    def close(self) -> None:
        pass


class WarmReplayer:
    """Each replay in a fork of a process that imported pytest and its plugins once (POSIX only)."""

    def __init__(self, options: ReplayOptions, *, timeout: float = 900.0) -> None:
        self.options = options
        self.timeout = timeout
        self.runs = 0
        import gc
        import importlib.metadata

        import pytest  # noqa: F401  (imported here so that every child has it already)

        for entry in importlib.metadata.entry_points(group="pytest11"):
            try:
                entry.load()
            except Exception:  # a broken plugin fails in the child, with pytest's own message
                pass
        self._warm_up()
        # Every object that exists now is shared with the children: keep the garbage collector (which
        # pytest runs at exit) from walking them again in every child.
        gc.freeze()

    def _warm_up(self) -> None:
        """One session on a throw-away test outside the project, in this process: plugins finish their lazy
        imports (Faker's providers, pytest's own modules) here, once, instead of in every child."""
        import pytest

        with tempfile.TemporaryDirectory(prefix="testbed-replay-warm-") as tmp:
            folder = Path(tmp)
            (folder / "pyproject.toml").write_text("")
            (folder / "test_warm.py").write_text("def test_warm():\n    pass\n")
            args = [str(folder / "test_warm.py"), "-q", "-p", "no:cacheprovider", f"--rootdir={folder}",
                    *self.options.plugin_switches()]
            saved = os.dup(1), os.dup(2)
            null = os.open(os.devnull, os.O_WRONLY)
            try:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(null, 1)
                os.dup2(null, 2)
                pytest.main(args)
            except BaseException:  # a warm-up that fails only costs the children their head start
                pass
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
                for fd in (*saved, null):
                    os.close(fd)

    def run(self, tests: Sequence[str]) -> ReplayResult:
        self.runs += 1
        with tempfile.TemporaryDirectory(prefix="testbed-replay-") as tmp:
            folder = Path(tmp)
            spec = write_spec(folder, tests)
            log = folder / "output.txt"
            args = self.options.pytest_args(tests, spec)
            env = self.options.child_env()
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child; its coverage is the results file
                code = 70
                try:
                    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                    os.dup2(fd, 1)
                    os.dup2(fd, 2)
                    null = os.open(os.devnull, os.O_RDONLY)
                    os.dup2(null, 0)
                    os.chdir(self.options.root)
                    os.environ.clear()
                    os.environ.update(env)
                    import pytest

                    code = int(pytest.main(args))
                finally:
                    try:
                        sys.stdout.flush()
                        sys.stderr.flush()
                    finally:
                        os._exit(code)
            exit_code = self._wait(pid)
            output = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
            return read_results(folder, exit_code, output)

    def _wait(self, pid: int) -> int:
        import time

        deadline = time.monotonic() + self.timeout
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                raise ReplayError(f"the replay did not finish within {self.timeout:.0f} s (a hung test?)")
            time.sleep(0.01)

    def close(self) -> None:
        pass


def replayer(options: ReplayOptions, *, warm: bool = True) -> SubprocessReplayer | WarmReplayer:
    """A warm (forking) replayer where the platform can fork, else one process per replay."""
    if warm and hasattr(os, "fork"):
        return WarmReplayer(options)
    return SubprocessReplayer(options)
