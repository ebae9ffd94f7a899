"""Shared test setup for testbed's own suite."""

from __future__ import annotations

# Inline pytester runs (pytester.runpytest) restore sys.modules afterwards; a module first imported inside
# such a run is imported a second time later, and its classes no longer match the ones kept elsewhere.
# Import them once, up front:
# - cryptography: its Rust bindings keep the first classes ("curve must be an EllipticCurve instance");
# - httpcore: httpx 0.28 imports it lazily and caches its exception map on first use, so a second httpcore's
#   ReadTimeout escapes unmapped (seen once pytest-randomly shuffled the suite).
import cryptography.hazmat.primitives.asymmetric.ec  # noqa: F401
import httpcore  # noqa: F401
import trustme  # noqa: F401
