"""Topic, subject, queue and stream names unique to one xdist worker and one test.

When the application lets a test choose where it publishes, a name from here keeps parallel workers and
consecutive tests from ever sharing a topic, so no test sees another's messages.
"""

from __future__ import annotations

import hashlib
import re

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def nodeid_token(nodeid: str, max_len: int = 40) -> str:
    """A short, broker-safe token for a test id: its readable name plus a hash of the full id."""
    name = nodeid.rsplit("::", 1)[-1]
    slug = _UNSAFE.sub("_", name).strip("_")[: max_len - 9] or "test"
    digest = hashlib.sha1(nodeid.encode()).hexdigest()[:8]
    return f"{slug}-{digest}"


def scoped_name(base: str, *, worker: str | None, nodeid: str, sep: str = ".") -> str:
    """``base`` suffixed with the worker ("gw1", or "main" without xdist) and the test token (nodeid_token).

    ``scoped_name("orders.created", worker="gw1", nodeid="tests/t.py::test_x")`` ->
    ``"orders.created.gw1.test_x-1a2b3c4d"``. Use ``sep="_"`` for systems where dots mean something.
    """
    return sep.join((base, worker or "main", nodeid_token(nodeid)))
