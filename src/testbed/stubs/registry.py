"""The set of stub mappings, ordered the way WireMock picks one: priority, then newest first."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from testbed.stubs.mapping import StubMapping
from testbed.stubs.request import Request
from testbed.stubs.scenarios import Scenarios


class StubRegistry:
    """Thread-safe stub store. ``match`` is the hot path: a precomputed, priority-ordered list."""

    def __init__(self, scenarios: Scenarios | None = None) -> None:
        self.scenarios = scenarios or Scenarios()
        self._stubs: dict[str, tuple[int, StubMapping]] = {}  # id -> (insertion sequence, stub)
        self._ordered: tuple[StubMapping, ...] = ()
        self._index: tuple[dict[str, tuple[StubMapping, ...]], tuple[StubMapping, ...]] = ({}, ())
        self._seq = 0
        self._lock = threading.Lock()

    def _reorder(self) -> None:
        items = sorted(self._stubs.values(), key=lambda p: (p[1].effective_priority, -p[0]))
        self._ordered = tuple(s for _, s in items)
        # The index: stubs with an exact path (url / urlPath) are only tried for that path; the others
        # (patterns, templates, any URL) for every path. Each list keeps the global order, so the winner
        # is the same as a scan of all stubs, in O(stubs for this path) instead of O(all stubs).
        generic: list[tuple[int, StubMapping]] = []
        by_path: dict[str, list[tuple[int, StubMapping]]] = {}
        for rank, stub in enumerate(self._ordered):
            key = stub.request.url.index_key()
            if key is None:
                generic.append((rank, stub))
            else:
                by_path.setdefault(key, []).append((rank, stub))
        generic_stubs = tuple(s for _, s in generic)
        indexed = {
            k: tuple(s for _, s in sorted(v + generic, key=lambda p: p[0])) for k, v in by_path.items()
        }
        self._index = (indexed, generic_stubs)  # one assignment: readers never see half an update

    def add(self, stub: StubMapping) -> None:
        """Add (or replace, keeping it newest) a stub."""
        with self._lock:
            self._seq += 1
            self._stubs[stub.id] = (self._seq, stub)
            self._reorder()

    def add_many(self, stubs: Iterable[StubMapping]) -> None:
        with self._lock:
            for stub in stubs:
                self._seq += 1
                self._stubs[stub.id] = (self._seq, stub)
            self._reorder()

    def replace(self, stub: StubMapping) -> bool:
        """Replace a stub in place (same position among equal priorities); False if its id is unknown."""
        with self._lock:
            if stub.id not in self._stubs:
                return False
            self._stubs[stub.id] = (self._stubs[stub.id][0], stub)
            self._reorder()
            return True

    def get(self, stub_id: str) -> StubMapping | None:
        found = self._stubs.get(stub_id)
        return found[1] if found else None

    def remove(self, stub_id: str) -> StubMapping | None:
        with self._lock:
            found = self._stubs.pop(stub_id, None)
            self._reorder()
            return found[1] if found else None

    def remove_where(self, predicate: Callable[[StubMapping], bool]) -> list[StubMapping]:
        with self._lock:
            gone = [s for _, s in self._stubs.values() if predicate(s)]
            for s in gone:
                del self._stubs[s.id]
            self._reorder()
            return gone

    def clear(self) -> None:
        with self._lock:
            self._stubs.clear()
            self._reorder()

    def all(self) -> list[StubMapping]:
        """Stubs newest first (the order of GET /__admin/mappings)."""
        with self._lock:
            return [s for _, s in sorted(self._stubs.values(), key=lambda p: -p[0])]

    def in_insertion_order(self) -> list[StubMapping]:
        """Stubs oldest first (the order of a scenario's mappings in GET /__admin/scenarios)."""
        with self._lock:
            return [s for _, s in sorted(self._stubs.values(), key=lambda p: p[0])]

    def ordered(self) -> tuple[StubMapping, ...]:
        return self._ordered

    def match(self, request: Request) -> StubMapping | None:
        """The stub that serves ``request``: the first match by priority, then newest; scenarios apply."""
        scenarios = self.scenarios
        indexed, generic = self._index
        for stub in indexed.get(request.path, generic):
            if stub.request.matches(request) and scenarios.allows(stub):
                return stub
        return None

    def __len__(self) -> int:
        return len(self._stubs)
