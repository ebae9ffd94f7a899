"""Ids of stubs, requests and serve events: random UUIDs (version 4) as WireMock prints them.

Written out here rather than with the uuid module, whose import (it pulls in platform) is a measurable
share of the standalone server's start.
"""

from __future__ import annotations

import os
import re

_UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.IGNORECASE)


def new_id() -> str:
    """A random version 4 UUID, e.g. ``9d3f...-...``."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def normalise_id(text: str) -> str | None:
    """``text`` as a lower-case, dashed UUID, or None if it is not one (braces and urn: prefix allowed)."""
    t = text.strip()
    t = t.removeprefix("urn:").removeprefix("uuid:").strip("{}")
    if not _UUID.fullmatch(t):
        return None
    h = t.replace("-", "").lower()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
