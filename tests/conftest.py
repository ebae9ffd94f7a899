"""Shared test setup for testbed's own suite."""

from __future__ import annotations

# Inline pytester runs (pytester.runpytest) restore sys.modules afterwards; a native-backed module first
# imported inside such a run is then imported a second time, and its classes no longer match the Rust
# bindings' (cryptography: "curve must be an EllipticCurve instance"). Import them once, up front.
import cryptography.hazmat.primitives.asymmetric.ec  # noqa: F401
import trustme  # noqa: F401
