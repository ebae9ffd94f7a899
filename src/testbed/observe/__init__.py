"""The seam between the layers that see what crosses a boundary and the layers that report it.

Isolation, the HTTP stubs, event capture and the servers publish :class:`BoundaryEvent` values here (a
statement, an exchange, a message, a log line, a leak); the per-test report subscribes. Publishers never
import a reporter, and publishing with nobody listening costs one empty-list check.

    with observe.listening(collect.append):
        ...                                  # every event published meanwhile, from any thread

Some boundaries are seen late: a server writes its statement log on its own schedule. Such a publisher
registers a *source* (``add_source``); a reader that needs everything up to now calls :func:`flush`, and
each source publishes what it has not published yet (with the time the server saw it, ``at``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

Observer = Callable[["BoundaryEvent"], None]


@dataclass(frozen=True)
class BoundaryEvent:
    """One thing that crossed a boundary, on the wall clock every publisher shares."""

    boundary: str  # "sql", "http", "events", "server log", "isolation"
    kind: str  # e.g. "statement", "exchange", "unmatched", "message", "leak"
    summary: str  # one line for a person
    data: Mapping[str, Any] = field(default_factory=dict)  # the details, for reports
    at: float = field(default_factory=time.time)


_observers: list[Observer] = []
_lock = threading.Lock()


def publish(boundary: str, kind: str, summary: str, *, at: float | None = None, **data: Any) -> None:
    """Tell every current observer what crossed ``boundary`` (cheap when nobody listens).

    ``at``: when it crossed (wall clock, seconds), if earlier than now (a server log read afterwards).
    """
    if not _observers:
        return
    event = BoundaryEvent(boundary, kind, summary, data) if at is None else BoundaryEvent(boundary, kind, summary,
                                                                                          data, at)
    for observer in list(_observers):
        try:
            observer(event)
        except Exception:  # noqa: S110 - a broken reporter must never break the code under test
            pass


def _register(registry: list[Any], item: Any) -> Callable[[], None]:
    """Add ``item`` to one of the registries; returns the function that removes it (once)."""
    with _lock:
        registry.append(item)

    def remove() -> None:
        with _lock:
            if item in registry:
                registry.remove(item)

    return remove


def subscribe(observer: Observer) -> Callable[[], None]:
    """Add an observer; returns the function that removes it."""
    return _register(_observers, observer)


@contextmanager
def listening(observer: Observer) -> Iterator[None]:
    """Observe every event published while the block runs."""
    unsubscribe = subscribe(observer)
    try:
        yield
    finally:
        unsubscribe()


def active() -> bool:
    """Whether anybody listens (publishers may skip building expensive details when not)."""
    return bool(_observers)


_sources: list[Callable[[bool], None]] = []


def add_source(flush_source: Callable[[bool], None]) -> Callable[[], None]:
    """Register a late publisher: ``flush_source(wait)`` publishes what it saw and has not published yet;
    with ``wait`` it first makes sure it has seen everything up to now (e.g. waits for a server's log).

    Returns the function that removes it.
    """
    return _register(_sources, flush_source)


def flush(wait: bool = True) -> None:
    """Ask every source to publish what it has seen up to now (a no-op without sources or listeners).

    ``wait=False``: only what is at hand, without waiting for late writers (cheaper; nothing is lost, a later
    flush publishes the rest with the time it happened).
    """
    if not _observers:
        return
    for source in list(_sources):
        try:
            source(wait)
        except Exception:  # noqa: S110 - a broken source must never break the code under test
            pass
