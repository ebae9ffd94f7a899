"""``testbed bisect | ci | durations``: suite hygiene from the shell."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the hygiene subcommands to testbed's command line."""
    p = sub.add_parser(
        "bisect", help="find the earlier test that makes TEST_ID fail (replays the recorded order of its worker)",
        description="Replays the order in which the last run ran the tests on the worker where TEST_ID failed "
                    "and bisects the tests before it to the one after which it fails, in O(log n) runs. Extra "
                    "arguments after -- go to every pytest run.",
    )
    p.add_argument("test_id", help="the failing test's node id, e.g. tests/test_orders.py::test_total")
    p.add_argument("--worker", help="the xdist worker whose order to replay (default: where TEST_ID failed)")
    p.add_argument("--cold", action="store_true",
                   help="start each run as a new Python process and its own servers (default: fork a process that "
                        "imported pytest and its plugins once, and reuse one PostgreSQL)")
    p.add_argument("--cache-dir", help="pytest's cache folder (default: the project's cache_dir or .pytest_cache)")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(func=bisect_command)

    p = sub.add_parser("ci", help="write a CI workflow: unit stage, sharded integration stage, durations kept current")
    p.add_argument("system", choices=("github", "gitlab"))
    p.add_argument("--shards", type=int, default=None, help="integration shards (default: [tool.testbed.hygiene] "
                                                              "shards, 4)")
    p.add_argument("--python", default="3.12", help="Python version of the CI jobs (default 3.12)")
    p.add_argument("--install", default=None, help="install command (default: pip install -e \".[test]\" or the "
                                                   "project's dev/test extra)")
    p.add_argument("--output", default=None, help="where to write it (default: .github/workflows/testbed.yml or "
                                                  ".gitlab-ci.yml; - for stdout)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=ci_command)

    p = sub.add_parser("durations", help="show or merge durations files (pytest-split's .test_durations format)")
    actions = p.add_subparsers(dest="action", required=True)
    show = actions.add_parser("show", help="the slowest tests of the durations file")
    show.add_argument("--file", default=None, help="durations file (default: [tool.testbed.hygiene] durations)")
    show.add_argument("--top", type=int, default=20)
    show.set_defaults(func=durations_show)
    merge = actions.add_parser("merge", help="merge CI shards' durations into the durations file")
    merge.add_argument("files", nargs="+", help="the shards' files (later files win for the same test)")
    merge.add_argument("--into", default=None, help="the file to update (default: [tool.testbed.hygiene] durations)")
    merge.add_argument("--prune", action="store_true",
                       help="drop tests that none of the files measured (deleted or renamed tests)")
    merge.set_defaults(func=durations_merge)


def _settings(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from testbed.hygiene.settings import load_hygiene

    return load_hygiene(Path(args.root).resolve())


def bisect_command(args: argparse.Namespace) -> int:
    from testbed.hygiene.bisect import bisect
    from testbed.hygiene.order import default_cache_dir

    root = Path(args.root).resolve()
    cache_dir = Path(args.cache_dir).resolve() if args.cache_dir else default_cache_dir(root)
    extra = [a for a in args.pytest_args if a != "--"] if args.pytest_args else []
    result = bisect(root, args.test_id, cache_dir=cache_dir, worker=args.worker, warm=not args.cold,
                    extra_args=extra, say=lambda line: print(line, flush=True))
    print(result.summary())
    print(f"runs: {result.runs}")
    return 0 if result.verdict == "polluter" else 1


def ci_command(args: argparse.Namespace) -> int:
    from testbed.hygiene.ci import DEFAULT_PATHS, detect_options, workflow

    settings = _settings(args)
    shards = args.shards or settings.shards
    if not 1 <= shards <= 256:
        print(f"testbed ci: --shards must be from 1 to 256, got {shards}", file=sys.stderr)
        return 2
    options = detect_options(settings.root, shards=shards, python=args.python, durations=settings.durations,
                             install=args.install)
    text = workflow(args.system, options)
    if args.output == "-":
        sys.stdout.write(text)
        return 0
    target = settings.resolve(args.output or DEFAULT_PATHS[args.system])
    if target.exists() and not args.force:
        print(f"testbed ci: {target} exists; pass --force to overwrite it, or --output - to print the workflow",
              file=sys.stderr)
        return 1
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target}: stage 1 unit (guarded), stage 2 integration in {shards} shards, durations kept in the "
          f"CI cache ({settings.durations})")
    return 0


def durations_show(args: argparse.Namespace) -> int:
    from testbed.hygiene.durations import read_durations

    path = Path(args.file) if args.file else _settings(args).durations_path
    durations = read_durations(path)
    if not durations:
        print(f"no durations in {path}: run pytest with --testbed-store-durations first")
        return 1
    tests = {k: v for k, v in durations.items() if "::" in k}
    total = sum(tests.values())
    print(f"{len(tests)} tests, {total:.1f}s in {path}")
    for nodeid, seconds in sorted(tests.items(), key=lambda kv: (-kv[1], kv[0]))[: args.top]:
        share = 100 * seconds / total if total else 0.0
        print(f"{seconds:9.3f}s {share:5.1f}%  {nodeid}")
    return 0


def durations_merge(args: argparse.Namespace) -> int:
    from testbed.hygiene.durations import merge_durations, read_durations, write_durations

    into = Path(args.into) if args.into else _settings(args).durations_path
    updates = []
    for name in args.files:
        path = Path(name)
        if not path.is_file():
            print(f"testbed durations merge: {path} does not exist (a shard that did not finish?); skipped",
                  file=sys.stderr)
            continue
        updates.append(read_durations(path))
    base = read_durations(into)
    merged = merge_durations(base, updates, prune=args.prune)
    write_durations(into, merged)
    measured = len(set().union(*updates)) if updates else 0
    print(f"{into}: {len(merged)} entries ({measured} measured by {len(updates)} file(s), "
          f"{len(set(merged) - set(base))} new, {len(set(base) - set(merged))} dropped)")
    return 0
