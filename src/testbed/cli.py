"""`testbed doctor | up | cache`: the library's services from the shell, for every engine in the registry."""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import sys
import threading
from pathlib import Path

from testbed.config import Settings, load_settings
from testbed.errors import TestbedError


def _size(path: Path) -> int:
    from testbed.runners.tree_cache import tree_size

    return tree_size(path) if path.exists() else 0


def doctor(args: argparse.Namespace) -> int:
    """Print what testbed found on this machine for every engine, and what it would use."""
    from testbed import engines
    from testbed.runners import binaries
    from testbed.runners.discovery import binary_sources
    from testbed.runners.reaper import reap_stale_runs
    from testbed.runners.users import readable_by, server_identity
    from testbed.runners.workspace import cache_root, data_location

    settings = load_settings(Path(args.root))
    print(f"project root:   {settings.root}")
    location = data_location(settings.data_dir)
    print(f"data dirs:      {location.path} ({location.kind}: {location.reason})")
    cache = cache_root(settings.cache_dir)
    print(f"cache:          {cache} ({_size(cache) / (1 << 20):.0f} MiB; `testbed cache clear` empties it)")
    who = server_identity()
    print(f"servers run as: {who.name + ' (you are root)' if who else 'the current user'}")
    print(f"binary sources: {', '.join(binary_sources())} (TESTBED_BINARY_SOURCES narrows them)")
    problems = 0
    wanted = [n for n in engines.names() if not args.engines or n in args.engines]
    for name in wanted:
        engine = engines.get(name)
        service = settings.service(name)
        print(f"\n{engine.label} [{name}]  runner: {service.runner}, pinned: {service.version or 'any'}")
        if service.runner == "existing":
            print(f"  uses the existing server at {service.url}")
            continue
        try:
            print(binaries.describe(engine.discover(service)))
            chosen = engine.choose_binary(service)
        except TestbedError as exc:
            print(f"  problem: {exc}")
            problems += name in settings.services or name in settings.engines
            continue
        staged = "" if readable_by(chosen.path, who) else f"; staged to a copy {who.name if who else ''} can run"
        print(f"  would use: {chosen.path} ({chosen.version}, from {chosen.source}{staged})")
    cleaned = reap_stale_runs()
    print("\nstale runs:     " + ("; ".join(cleaned) if cleaned else "none"))
    return 1 if problems else 0


def up(args: argparse.Namespace) -> int:
    """Start services and keep them running until Ctrl-C (or SIGTERM); print their URLs."""
    from testbed import engines
    from testbed.provision import service

    settings = load_settings(Path(args.root))
    unknown = [s for s in args.services if s not in engines.names()]
    if unknown:
        print(f"testbed up: unknown service(s) {', '.join(unknown)}; choose from {', '.join(engines.names())}",
              file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.ExitStack() as stack:
        for name in args.services:
            running = stack.enter_context(service(name, root=settings.root, settings=settings.service(name)))
            print(f"{name} {running.version} ({running.binary})")
            print(f"  url: {running.url}", flush=True)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    return 0


def down(args: argparse.Namespace) -> int:
    """Stop the servers kept between runs (they also stop by themselves after reuse_idle seconds)."""
    from testbed.runners.keeper import down as stop_kept

    stopped = stop_kept()
    print("\n".join(stopped) if stopped else "no kept servers")
    return 0


def _settings_or_default(root: str) -> Settings:
    return load_settings(Path(root))


def cache(args: argparse.Namespace) -> int:
    from testbed.runners.workspace import cache_root

    root = cache_root(_settings_or_default(args.root).cache_dir)
    if args.action == "clear":
        shutil.rmtree(root, ignore_errors=True)
        print(f"removed {root}")
    else:
        print(root)
    return 0


def main(argv: list[str] | None = None) -> int:
    from testbed import engines

    parser = argparse.ArgumentParser(prog="testbed", description=__doc__)
    parser.add_argument("--root", default=".", help="project folder (where pyproject.toml is)")
    sub = parser.add_subparsers(dest="command", required=True)
    p_doctor = sub.add_parser("doctor", help="binaries found per engine, data dir, cache, stale runs")
    p_doctor.add_argument("engines", nargs="*", help=f"only these ({', '.join(engines.names())})")
    p_doctor.set_defaults(func=doctor)
    p_up = sub.add_parser("up", help=f"start services ({' '.join(engines.names())}); print URLs; until Ctrl-C")
    p_up.add_argument("services", nargs="+")
    p_up.set_defaults(func=up)
    sub.add_parser("down", help="stop the servers kept between runs (reuse)").set_defaults(func=down)
    p_cache = sub.add_parser("cache", help="show or clear the server data cache")
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
