"""The request journal: every request served (matched or not) with the stub and the response."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from testbed.stubs.ids import new_id
from testbed.stubs.mapping import StubMapping
from testbed.stubs.request import Request

if TYPE_CHECKING:
    from testbed.stubs.responses import ResponseDefinition


@dataclass(frozen=True, eq=False)
class ServedResponse:
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    fault: str | None = None


@dataclass(frozen=True, eq=False)
class ServeEvent:
    """One request and what the server did with it (WireMock's ServeEvent)."""

    request: Request
    stub: StubMapping | None
    response: ServedResponse
    id: str = field(default_factory=new_id)
    serve_ms: float = 0.0
    error: str | None = None  # the stub matched but its response could not be made (e.g. a template)

    @property
    def was_matched(self) -> bool:
        return self.stub is not None

    def to_json(self) -> dict[str, Any]:
        definition: ResponseDefinition | None = self.stub.response if self.stub else None
        headers: dict[str, Any] = {}
        for k, v in self.response.headers:
            headers[k] = v if k not in headers else [*([headers[k]] if isinstance(headers[k], str) else headers[k]), v]
        if self.stub is None:  # WireMock journals an unmatched request with an empty 404 and a report
            return self._unmatched_json()
        out: dict[str, Any] = {
            "id": self.id,
            "request": self.request.to_json(),
            "responseDefinition": (
                {"status": 500, "body": self.error, "headers": {"Content-Type": "text/plain"}}
                if self.error is not None
                else {"status": 200, **definition.to_json()}
                if definition
                else {}
            ),
            "response": {
                "status": self.response.status,
                "headers": headers,
                "bodyAsBase64": base64.b64encode(self.response.body).decode(),
                "body": self.response.body.decode("utf-8", "replace"),
            },
            "wasMatched": self.was_matched,
            "timing": self._timing(),
            "subEvents": [] if self.error is None else [{"type": "ERROR", "data": {"message": self.error}}],
        }
        out["stubMapping"] = self.stub.to_json()
        return out

    def _unmatched_json(self) -> dict[str, Any]:
        placeholder = new_id()
        not_found = {"status": 404, "fromConfiguredStub": False}
        return {
            "id": self.id,
            "request": self.request.to_json(),
            "responseDefinition": dict(not_found),
            "response": {"status": 404, "bodyAsBase64": "", "body": ""},
            "wasMatched": False,
            "timing": self._timing(),
            "subEvents": [
                {
                    "type": "REQUEST_NOT_MATCHED",
                    "timeOffsetNanos": round(self.serve_ms * 1_000_000),
                    "data": {
                        "status": 404,
                        "contentType": "text/plain",
                        "report": self.response.body.decode("utf-8", "replace"),
                    },
                }
            ],
            "stubMapping": {
                "id": placeholder,
                "request": {"method": "ANY"},
                "response": not_found,
                "uuid": placeholder,
            },
        }

    def _timing(self) -> dict[str, int]:
        ms = round(self.serve_ms)
        return {"addedDelay": 0, "processTime": ms, "responseSendTime": 0, "serveTime": ms, "totalTime": ms}


class Journal:
    """Thread-safe, bounded list of ServeEvents, newest last."""

    def __init__(self, max_entries: int | None = 10_000, enabled: bool = True) -> None:
        self.max_entries = max_entries
        self.enabled = enabled
        self._events: list[ServeEvent] = []
        self._lock = threading.Lock()

    def record(self, event: ServeEvent) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._events.append(event)
            if self.max_entries is not None and len(self._events) > self.max_entries:
                del self._events[: len(self._events) - self.max_entries]

    def events(self) -> list[ServeEvent]:
        with self._lock:
            return list(self._events)

    def find(self, predicate: Callable[[ServeEvent], bool]) -> list[ServeEvent]:
        return [e for e in self.events() if predicate(e)]

    def get(self, event_id: str) -> ServeEvent | None:
        return next((e for e in self.events() if e.id == event_id), None)

    def remove(self, predicate: Callable[[ServeEvent], bool]) -> list[ServeEvent]:
        with self._lock:
            gone = [e for e in self._events if predicate(e)]
            self._events = [e for e in self._events if not predicate(e)]
            return gone

    def clear(self) -> None:
        with self._lock:
            self._events.clear()

    def __len__(self) -> int:
        return len(self._events)
