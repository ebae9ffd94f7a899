"""`testbed doctor | up | cache`: the library's services from the shell."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from testbed.config import load_settings
from testbed.errors import TestbedError
from testbed.runners import binaries
from testbed.runners.reaper import reap_stale_runs
from testbed.runners.users import server_identity
from testbed.runners.workspace import cache_root, data_location
from testbed.services.discovery import binary_sources


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
    print(f"PostgreSQL binaries (discovery order: {', '.join(binary_sources())}):")
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
    """Start services and keep them running until Ctrl-C (or SIGTERM); print their URLs."""
    import contextlib

    from testbed.config import ENGINES

    settings = load_settings(Path(args.root))
    unknown = [s for s in args.services if s not in ENGINES]
    if unknown:
        print(f"testbed up: unknown service(s) {', '.join(unknown)}; choose from {', '.join(ENGINES)}",
              file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.ExitStack() as stack:
        for name in args.services:
            url, what = _start_for_shell(stack, name, settings)
            print(f"{name} {what}")
            print(f"  url: {url}", flush=True)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    return 0


def _start_for_shell(stack: Any, name: str, settings: Any) -> tuple[str, str]:
    """Start one engine inside ``stack``; its URL and a one-line description."""
    service = settings.service(name)
    if name == "postgres":
        from testbed.provision import postgres

        pg = stack.enter_context(postgres(version=service.version, migrations=service.migrations,
                                          root=settings.root))
        return pg.url, f"{pg.version} ({pg.binary})"
    if name == "mysql":
        from testbed.services import mysql

        m = stack.enter_context(mysql.running(service, settings.root))
        return str(m.url), "(MariaDB/MySQL)"
    from testbed.services import nats, rabbitmq, redis

    module = {"redis": redis, "nats": nats, "rabbitmq": rabbitmq}[name]
    server = stack.enter_context(module.running(service))
    endpoint = server.endpoint()
    url = endpoint.url() if callable(endpoint.url) else endpoint.url
    return str(url), f"{endpoint.version} ({endpoint.binary})"


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
    p_up = sub.add_parser("up", help="start services (postgres mysql redis nats rabbitmq); URLs; until Ctrl-C")
    p_up.add_argument("services", nargs="+")
    p_up.set_defaults(func=up)
    p_cache = sub.add_parser("cache", help="show or clear the initdb/template cache")
    p_cache.add_argument("action", choices=["show", "clear"], nargs="?", default="show")
    p_cache.set_defaults(func=cache)
    from testbed.hygiene.commands import add_commands

    add_commands(sub)  # bisect, ci, durations
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except TestbedError as exc:
        print(f"testbed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
