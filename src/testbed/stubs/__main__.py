"""Standalone stub server with WireMock's flags: ``python -m testbed.stubs --port 0 --root-dir DIR``.

Prints ``port: N`` (and ``https-port: N``) once it is serving, like WireMock's start banner, so an existing
WireMock mapping folder and client move over unchanged. Stops on Ctrl-C, SIGTERM or POST /__admin/shutdown.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from testbed.stubs.server import VERSION, StubServer


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m testbed.stubs", description="testbed's WireMock-compatible HTTP stub server"
    )
    p.add_argument("--port", type=int, default=8080, help="HTTP port (0 = a free port)")
    p.add_argument("--https-port", type=int, default=None, help="also serve HTTPS here (0 = a free port)")
    p.add_argument("--bind-address", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--root-dir", default=None, help="folder holding mappings/ and __files/")
    p.add_argument("--disable-banner", action="store_true", help="accepted for compatibility")
    p.add_argument("--verbose", action="store_true", help="log every request to stderr")
    p.add_argument(
        "--global-response-templating",
        action="store_true",
        help="template every response, not only those with the response-template transformer",
    )
    p.add_argument("--local-response-templating", action="store_true", help="accepted (the default)")
    p.add_argument("--disable-response-templating", action="store_true", help="accepted for compatibility")
    p.add_argument("--no-request-journal", action="store_true", help="do not record requests")
    p.add_argument("--max-request-journal-entries", type=int, default=10_000)
    p.add_argument("--disable-gzip", action="store_true", help="accepted (testbed never gzips)")
    p.add_argument("--disable-request-logging", action="store_true", help="accepted for compatibility")
    p.add_argument("--ca-bundle-out", default=None, help="write the HTTPS CA bundle (PEM) to this path")
    p.add_argument(
        "--die-with-parent",
        action="store_true",
        help="stop when stdin closes (testbed passes this so its server never outlives a killed run)",
    )
    return p


def _reap_stale_runs() -> None:
    """What a SIGKILLed run left (a stub server's TLS folder among others): removed once this one serves."""
    from testbed.runners.reaper import reap_stale_runs

    try:
        reap_stale_runs()
    except OSError as exc:
        print(f"testbed stub server: could not reap stale runs: {exc}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    server = StubServer(
        port=args.port,
        host=args.bind_address,
        root_dir=args.root_dir,
        https_port=args.https_port,
        global_response_templating=args.global_response_templating,
        verbose=args.verbose,
        max_request_journal_entries=args.max_request_journal_entries,
        request_journal=not args.no_request_journal,
    )
    server.start()

    def stop(signum: int, frame: FrameType | None) -> None:
        server.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.die_with_parent:

        def watch_stdin() -> None:
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            except (OSError, ValueError):
                pass
            server.stop()

        threading.Thread(target=watch_stdin, daemon=True, name="testbed-stub-parent-watch").start()
    lines = [f"version: {VERSION} (testbed)", f"port: {server.port}"]
    if server.https_port is not None:
        lines.append(f"https-port: {server.https_port}")
        if args.ca_bundle_out:
            import shutil

            shutil.copyfile(server.ca_bundle, args.ca_bundle_out)
        lines.append(f"ca-bundle: {args.ca_bundle_out or server.ca_bundle}")
    for err in server.load_errors:
        lines.append(f"skipped: {err}")
    lines.append(f"serving: {server.url}")
    print("\n".join(lines), flush=True)
    threading.Thread(target=_reap_stale_runs, daemon=True, name="testbed-stub-reaper").start()
    try:
        while not server.wait_stopped(0.5):
            pass
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
