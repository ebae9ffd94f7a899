"""Polluter bisection: ``testbed bisect`` vs detect-test-pollution on the same seeded suite.

What it measures: a generated suite of 500 plain tests in 10 modules (``--quick``: 16 in 2) with one
polluter (it leaves a key in a shared module's dict) and one victim (it asserts the key is absent) at
seeded positions, the victim after the polluter in collection order. A normal pytest run (untimed) fails
the victim and leaves testbed's order record; then, interleaved after an untimed warm-up run of each:

- testbed: ``testbed bisect VICTIM`` (replays the tests that ran before the victim in that run; each
  replay is a fork of a process that imported pytest and its plugins once);
- detect-test-pollution (the peer): ``detect-test-pollution --failing-test VICTIM --tests tests`` (a
  new ``python -m pytest`` per step, like every run of it; testbed's hygiene plugin is turned off for its
  runs with PYTEST_ADDOPTS so they do not overwrite the order record).

Both run in this venv with its installed plugins autoloaded and Python's bytecode cache on, as a user's
runs would (the script drops PYTHONDONTWRITEBYTECODE from their environment). The figures are the
number of pytest runs each needed and the wall time, medians over the rounds; each must name the planted
polluter or the round counts as wrong.

Run:  .venv/bin/python bench/bisect.py [--quick]
The last line is ``RESULT testbed_runs=... peer_runs=... testbed_s=... peer_s=... ratio=...`` (ratio =
testbed / peer wall time). Timings are printed, never asserted.
"""

from __future__ import annotations

import os
import sys

if __name__ != "__main__":
    # This file shares its name with the standard library's `bisect`, and this folder comes first on the
    # import path of every script in it: when `random` or `statistics` import `bisect` from another bench
    # script, hand them the standard library's module instead of this one.
    import importlib.util
    import sysconfig

    _spec = importlib.util.spec_from_file_location("bisect", os.path.join(sysconfig.get_paths()["stdlib"],
                                                                         "bisect.py"))
    assert _spec is not None and _spec.loader is not None
    _stdlib = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_stdlib)
    sys.modules["bisect"] = _stdlib
    globals().update({k: v for k, v in vars(_stdlib).items() if not k.startswith("__")})
else:
    # Run as the benchmark: keep this folder off the import path before importing random and statistics.
    sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != os.path.dirname(os.path.realpath(__file__))]

# random, statistics and tempfile (which import `bisect`) are imported where they are used.
import argparse  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

SEED = 20261130
RUN_TIMEOUT_S = 900  # one bisection; bounds the loop even if something hangs
BIN = Path(sys.executable).parent
# Python as users run it: with its bytecode cache. (Some sandboxes set PYTHONDONTWRITEBYTECODE, which makes
# every interpreter start compile every module again: seconds per pytest start here.)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def write_suite(root: Path, modules: int, per_module: int, seed: int) -> tuple[str, str]:
    """The suite; returns (polluter, victim) node ids."""
    import random

    rng = random.Random(seed)
    ids = [(m, t) for m in range(modules) for t in range(per_module)]
    a, b = sorted(rng.sample(range(len(ids)), 2))
    polluter, victim = ids[a], ids[b]
    (root / "pyproject.toml").write_text("")
    tests = root / "tests"
    tests.mkdir()
    (tests / "shared_state.py").write_text("SESSION = {}\n")
    (tests / "conftest.py").write_text("import os, sys\nsys.path.insert(0, os.path.dirname(__file__))\n")
    for m in range(modules):
        lines = ["import shared_state", ""]
        for t in range(per_module):
            if (m, t) == polluter:
                lines.append(f"def test_{t}():\n    shared_state.SESSION['user'] = 'left over'\n")
            elif (m, t) == victim:
                lines.append(f"def test_{t}():\n    assert 'user' not in shared_state.SESSION\n")
            else:
                lines.append(f"def test_{t}():\n    assert sum(range({t})) >= 0\n")
        (tests / f"test_mod{m}.py").write_text("\n".join(lines))
    return f"tests/test_mod{polluter[0]}.py::test_{polluter[1]}", f"tests/test_mod{victim[0]}.py::test_{victim[1]}"


def recorded_run(root: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "tests"], cwd=root,
                         capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=ENV)
    if "1 failed" not in out.stdout:
        raise SystemExit(f"the recorded run should fail the victim once:\n{out.stdout[-2000:]}")


def run_testbed(root: Path, victim: str) -> tuple[int, float, str]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "testbed.cli", "--root", str(root), "bisect", victim], cwd=root,
                         capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=ENV)
    elapsed = time.perf_counter() - start
    found = re.search(r"the polluting test is: (\S+)", out.stdout)
    runs = re.search(r"runs: (\d+)", out.stdout)
    return (int(runs.group(1)) if runs else -1), elapsed, found.group(1) if found else (out.stdout + out.stderr)[-800:]


def run_peer(root: Path, victim: str) -> tuple[int, float, str]:
    env = {**ENV, "PYTEST_ADDOPTS": "-p no:testbed_hygiene"}
    start = time.perf_counter()
    out = subprocess.run([str(BIN / "detect-test-pollution"), "--failing-test", victim, "--tests", "tests"],
                         cwd=root, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=env)
    elapsed = time.perf_counter() - start
    found = re.search(r"the polluting test is: (\S+)", out.stdout)
    # discovery, alone, whole group, one per step, the final check
    runs = 4 + len(re.findall(r"^running step \d+:", out.stdout, re.M))
    return runs, elapsed, found.group(1) if found else out.stdout[-500:]


def main() -> int:
    import random
    import statistics
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="16 tests, one round; finishes in under 60 s")
    args = ap.parse_args()
    modules, per_module, rounds = (2, 8, 1) if args.quick else (10, 50, 3)
    work = Path(tempfile.mkdtemp(prefix="testbed-bench-bisect-"))
    try:
        root = work / "suite"
        root.mkdir()
        polluter, victim = write_suite(root, modules, per_module, SEED)
        print(f"suite: {modules * per_module} tests, polluter {polluter}, victim {victim}")
        recorded_run(root)
        tools = {"testbed": run_testbed, "detect-test-pollution": run_peer}
        results: dict[str, list[tuple[int, float]]] = {name: [] for name in tools}
        wrong: dict[str, int] = {name: 0 for name in tools}
        if not args.quick:
            for run in tools.values():  # warm-up: OS caches, .pyc files
                run(root, victim)
        else:
            subprocess.run([sys.executable, "-m", "pytest", "--co", "-q", "tests"], cwd=root, capture_output=True,
                           timeout=RUN_TIMEOUT_S, env=ENV)  # one untimed warm-up run
        order_rng = random.Random(SEED)
        for round_ in range(rounds):
            names = list(tools)
            order_rng.shuffle(names)
            for name in names:
                runs, seconds, found = tools[name](root, victim)
                ok = found == polluter
                wrong[name] += not ok
                results[name].append((runs, seconds))
                print(f"round {round_ + 1}: {name:<22} {runs:>3} runs {seconds:7.1f} s  "
                      f"{'found ' + found if ok else 'WRONG: ' + found}")
        med = {name: (statistics.median(r for r, _ in v), statistics.median(s for _, s in v))
               for name, v in results.items()}
        print(f"\n{'tool':<24}{'runs':>6}{'wall s':>9}")
        for name, (runs, seconds) in med.items():
            print(f"{name:<24}{runs:>6.0f}{seconds:>9.1f}")
        ours, peer = med["testbed"], med["detect-test-pollution"]
        print(f"RESULT tests={modules * per_module} testbed_runs={ours[0]:.0f} peer_runs={peer[0]:.0f} "
              f"testbed_s={ours[1]:.1f} peer_s={peer[1]:.1f} ratio={ours[1] / peer[1]:.3f} "
              f"testbed_wrong={wrong['testbed']} peer_wrong={wrong['detect-test-pollution']}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
