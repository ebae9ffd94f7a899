"""`make demo`: run every example's integration suite against real services testbed starts.

Each example is a project of its own (its pyproject.toml holds its [tool.testbed] table); this runs
pytest in each, then prints what a newcomer wants to know: which real services ran, how many tests
passed per suite, the slowest tests and the total time.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent


def main() -> int:
    suites = sorted(p.parent for p in EXAMPLES.glob("*/pyproject.toml"))
    started = time.perf_counter()
    failed = False
    summary: list[str] = []
    for suite in suites:
        print(f"\n=== examples/{suite.name} ===", flush=True)
        out = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-n", "2", "--durations=5", "-p", "no:cacheprovider"],
            cwd=suite, capture_output=True, text=True,
        )
        print(out.stdout[-6000:], end="")
        print(out.stderr[-2000:], end="", file=sys.stderr)
        failed |= out.returncode != 0
        last = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else "(no output)"
        services = [ln for ln in out.stdout.splitlines() if re.match(r"^(PostgreSQL|Redis|NATS|RabbitMQ|MariaDB)", ln)]
        summary.append(f"examples/{suite.name}: {last.strip('= ')}")
        summary += [f"    real service: {s}" for s in services]
    total = time.perf_counter() - started
    print("\n=== demo summary ===")
    print("\n".join(summary))
    print(f"total time: {total:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
