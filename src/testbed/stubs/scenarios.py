"""Stateful scenarios: each named scenario has a current state; stubs can require and move it."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from testbed.stubs.mapping import STARTED, StubMapping


class Scenarios:
    """The current state of every scenario (a scenario starts, and resets, at "Started")."""

    def __init__(self) -> None:
        self._states: dict[str, str] = {}
        self._lock = threading.Lock()

    def state(self, name: str) -> str:
        return self._states.get(name, STARTED)

    def allows(self, stub: StubMapping) -> bool:
        if stub.scenario_name is None or stub.required_scenario_state is None:
            return True
        return self._states.get(stub.scenario_name, STARTED) == stub.required_scenario_state

    def advance(self, stub: StubMapping) -> None:
        """Called after ``stub`` served a request."""
        if stub.scenario_name is not None and stub.new_scenario_state is not None:
            with self._lock:
                self._states[stub.scenario_name] = stub.new_scenario_state

    def set(self, name: str, state: str | None) -> None:
        with self._lock:
            if state is None or state == STARTED:
                self._states.pop(name, None)
            else:
                self._states[name] = state

    def reset(self) -> None:
        with self._lock:
            self._states.clear()

    @staticmethod
    def possible_states(name: str, stubs: Iterable[StubMapping]) -> list[str]:
        """The states a scenario's stubs name (required or new), in the order they appear."""
        possible: list[str] = []
        for s in stubs:
            if s.scenario_name == name:
                for st in (s.required_scenario_state, s.new_scenario_state):
                    if st is not None and st not in possible:
                        possible.append(st)
        return possible

    def to_json(self, stubs: Iterable[StubMapping]) -> list[dict[str, Any]]:
        """WireMock's GET /__admin/scenarios list."""
        by_name: dict[str, list[StubMapping]] = {}
        for stub in stubs:
            if stub.scenario_name is not None:
                by_name.setdefault(stub.scenario_name, []).append(stub)
        from testbed.stubs.java_text import java_hash_order

        out = []
        for name in java_hash_order(list(by_name)):  # WireMock keeps scenarios in a hash map
            members = by_name[name]
            possible = self.possible_states(name, members)
            out.append(
                {
                    "id": name,
                    "name": name,
                    "state": self.state(name),
                    "possibleStates": possible,
                    "mappings": [s.to_json() for s in members],
                }
            )
        return out
