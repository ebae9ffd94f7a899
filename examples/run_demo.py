"""`make demo`: run every example's integration suite against real services testbed starts.

Each example is a project of its own (its pyproject.toml holds its [tool.testbed] table); this runs
pytest in each (2 workers, random order), then prints what a newcomer wants to know: which real services
ran (engine, version, which binary), how many tests ran per boundary, the slowest tests and the time.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent
ORDER = ["orders", "basics"]  # the worked example first


def _section(lines: list[str], title: str) -> list[str]:
    """The lines of a pytest terminal section ('==== title ====') up to the next section."""
    out: list[str] = []
    inside = False
    for line in lines:
        if line.startswith("=") and line.rstrip("=").strip(" =") and line.strip("= ").startswith(title):
            inside = True
            continue
        if inside and line.startswith("="):
            break
        if inside and line.strip():
            out.append(line)
    return out


def run_suite(suite: Path) -> tuple[bool, list[str], float]:
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "2", "--durations=3", "-p", "no:cacheprovider"],
        cwd=suite, capture_output=True, text=True,
    )
    wall = time.perf_counter() - started
    if out.returncode != 0:
        print(out.stdout[-8000:], end="")
        print(out.stderr[-2000:], end="", file=sys.stderr)
    lines = out.stdout.splitlines()
    summary = [f"examples/{suite.name}: {lines[-1].strip('= ') if lines else '(no output)'} ({wall:.1f} s wall)"]
    summary += [f"  real service: {s}" for s in _section(lines, "testbed services")]
    summary += [f"  boundary {s}" for s in _section(lines, "tests per boundary")]
    summary += [f"  slow: {s.strip()}" for s in _section(lines, "slowest")[:3] if not s.startswith("(")]
    return out.returncode == 0, summary, wall


def main() -> int:
    found = {p.parent.name: p.parent for p in EXAMPLES.glob("*/pyproject.toml")}
    suites = [found[n] for n in ORDER if n in found] + [p for n, p in sorted(found.items()) if n not in ORDER]
    started = time.perf_counter()
    ok = True
    report: list[str] = []
    for suite in suites:
        print(f"running examples/{suite.name} ...", flush=True)
        passed, summary, _ = run_suite(suite)
        ok &= passed
        report += summary
    print("\n=== testbed demo ===")
    print("\n".join(report))
    print(f"total: {time.perf_counter() - started:.1f} s; no Docker, every service a real local process")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
