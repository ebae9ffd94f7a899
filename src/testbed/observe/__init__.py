"""The seam between the layers that see what crosses a boundary and the layers that report it.

Isolation, the HTTP stubs, event capture and the servers publish :class:`BoundaryEvent` values here (a
statement, an exchange, a message, a log line, a leak); the per-test report subscribes. Publishers never
import a reporter, and publishing with nobody listening costs one empty-list check.

    with observe.listening(collect.append):
        ...                                  # every event published meanwhile, from any thread
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


def publish(boundary: str, kind: str, summary: str, **data: Any) -> None:
    """Tell every current observer what crossed ``boundary`` (cheap when nobody listens)."""
    if not _observers:
        return
    event = BoundaryEvent(boundary, kind, summary, data)
    for observer in list(_observers):
        try:
            observer(event)
        except Exception:  # noqa: S110 - a broken reporter must never break the code under test
            pass


def subscribe(observer: Observer) -> Callable[[], None]:
    """Add an observer; returns the function that removes it."""
    with _lock:
        _observers.append(observer)

    def unsubscribe() -> None:
        with _lock:
            if observer in _observers:
                _observers.remove(observer)

    return unsubscribe


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
