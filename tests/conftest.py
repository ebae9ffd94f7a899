"""Shared test setup for testbed's own suite."""

from __future__ import annotations

# Inline pytester runs (pytester.runpytest) restore sys.modules afterwards; a module first imported inside
# such a run is imported a second time later, and its classes no longer match the ones kept elsewhere.
# Import them once, up front:
# - cryptography: its Rust bindings keep the first classes ("curve must be an EllipticCurve instance");
# - httpcore: httpx 0.28 imports it lazily and caches its exception map on first use, so a second httpcore's
#   ReadTimeout escapes unmapped (seen once pytest-randomly shuffled the suite);
# - testbed's engine settings classes: a module each, loaded when a run first validates that engine's table
#   (an inline run that loaded one first left the engine holding another class of the same name).
import os

import cryptography.hazmat.primitives.asymmetric.ec  # noqa: F401
import httpcore  # noqa: F401
import trustme  # noqa: F401

import testbed.engines.settings.mysql  # noqa: F401
import testbed.engines.settings.nats  # noqa: F401
import testbed.engines.settings.postgres  # noqa: F401
import testbed.engines.settings.s3  # noqa: F401

# testbed's own tests check that servers stop with their session: no server kept between runs, here or in
# the pytester runs they start (tests of reuse turn it on for themselves).
os.environ["TESTBED_REUSE"] = "0"


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    """Show the measured WireMock conformance share (recorded by the differential test, on any worker)."""
    for report in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", []):
        for name, value in getattr(report, "user_properties", []):
            if name == "stub_conformance_share" and report.when == "call":
                terminalreporter.write_line(f"WireMock conformance (differential vs the 3.13.2 jar): {value:.1%} "
                                            "identical; details in .cache/stub-conformance.txt")
