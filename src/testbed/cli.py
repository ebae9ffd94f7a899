"""`testbed doctor | up | cache`: the library's services from the shell."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import threading
from pathlib import Path

from testbed.config import load_settings
from testbed.errors import TestbedError
from testbed.runners import binaries
from testbed.runners.reaper import reap_stale_runs
from testbed.runners.users import server_identity
from testbed.runners.workspace import cache_root, data_location


def doctor(args: argparse.Namespace) -> int:
    """Print what testbed found on this machine and what it would use."""
    from testbed.services import postgres

    settings = load_settings(Path(args.root))
    pg = settings.service("postgres")
    print(f"project root: {settings.root}")
    location = data_location(pg.data_dir)
    print(f"data dirs:    {location.path} ({location.kind}: {location.reason})")
    print(f"cache:        {cache_root(settings.cache_dir)}")
    who = server_identity()
    print(f"servers run as: {who.name if who else 'the current user'}")
    print(f"PostgreSQL binaries (discovery order: {', '.join(postgres.ALL_SOURCES)}):")
    candidates = postgres.discover(pg)
    print(binaries.describe(candidates))
    try:
        chosen = postgres.choose_binary(pg)
        print(f"  would use: {chosen.path} ({chosen.version}, pinned: {pg.version or 'any'})")
    except TestbedError as exc:
        print(f"  problem: {exc}")
        return 1
    for line in reap_stale_runs():
        print(f"cleaned: {line}")
    return 0


def up(args: argparse.Namespace) -> int:
    """Start services and keep them running until Ctrl-C."""
    from testbed.provision import postgres

    settings = load_settings(Path(args.root))
    unknown = [s for s in args.services if s != "postgres"]
    if unknown:
        print(f"testbed up: only 'postgres' is available from the CLI so far (got {', '.join(unknown)})",
              file=sys.stderr)
        return 2
    pg = settings.service("postgres")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with postgres(version=pg.version, migrations=pg.migrations, root=settings.root) as running:
        print(f"postgres {running.version} ({running.binary})")
        print(f"  url: {running.url}", flush=True)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    return 0


def cache(args: argparse.Namespace) -> int:
    root = cache_root(load_settings(Path(args.root)).cache_dir)
    if args.action == "clear":
        shutil.rmtree(root, ignore_errors=True)
        print(f"removed {root}")
    else:
        print(root)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="testbed", description=__doc__)
    parser.add_argument("--root", default=".", help="project folder (where pyproject.toml is)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("doctor", help="show binaries found, data dir location, cache").set_defaults(func=doctor)
    p_up = sub.add_parser("up", help="start services, print their URLs, run until Ctrl-C")
    p_up.add_argument("services", nargs="+")
    p_up.set_defaults(func=up)
    p_cache = sub.add_parser("cache", help="show or clear the initdb/template cache")
    p_cache.add_argument("action", choices=["show", "clear"], nargs="?", default="show")
    p_cache.set_defaults(func=cache)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except TestbedError as exc:
        print(f"testbed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
