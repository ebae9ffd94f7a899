"""The observe seam: the layers that see a boundary publish what crossed it, without knowing who listens."""

from __future__ import annotations

import httpx
import pytest

from testbed import observe
from testbed.observe import BoundaryEvent
from testbed.stubs import StubServer, get


def test_stub_exchanges_are_published_matched_and_unmatched() -> None:
    seen: list[BoundaryEvent] = []
    with StubServer() as server, observe.listening(seen.append):
        server.add_mapping(get("/v1/ping").will_return(json={"ok": True}).named("ping").to_json())
        httpx.get(server.url + "/v1/ping")
        httpx.get(server.url + "/v1/nothing")
    http = [e for e in seen if e.boundary == "http"]
    assert [(e.kind, e.data["status"], e.data["stub"]) for e in http] == [("exchange", 200, "ping"),
                                                                          ("unmatched", 404, None)]
    assert http[0].summary == "GET /v1/ping -> 200 (ping)" and http[0].data["response_body"] == '{"ok":true}'


def test_nothing_is_published_without_a_listener(monkeypatch: pytest.MonkeyPatch) -> None:
    # This process's own plugins may listen (the hygiene plugin's order record does): take them away.
    monkeypatch.setattr(observe, "_observers", [])
    assert not observe.active()
    observe.publish("http", "exchange", "ignored")  # no observer: no error, no cost beyond the check
