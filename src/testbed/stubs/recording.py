"""Record and snapshot: proxy to a real service and turn what came back into stub mappings (WireMock's
/__admin/recordings routes)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from testbed.stubs.errors import InvalidStubError, StubError
from testbed.stubs.ids import new_id
from testbed.stubs.journal import ServeEvent
from testbed.stubs.mapping import STARTED, StubMapping, parse_mapping
from testbed.stubs.matching import parse_request_pattern

if TYPE_CHECKING:
    from testbed.stubs.server import StubServer

# Response headers a recorded stub must not replay: they describe the upstream's connection or encoding.
_DROP_HEADERS = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding"}
)
_TEXT_TYPES = ("text/", "json", "xml", "javascript", "x-www-form-urlencoded")


def safe_name(path: str) -> str:
    """WireMock's stub name for a recorded URL: the path's words joined by underscores."""
    name = re.sub(r"[^A-Za-z0-9]+", "_", path.split("?", 1)[0]).strip("_")
    return name[:150]


def _request_pattern(event: ServeEvent, spec: Mapping[str, Any]) -> dict[str, Any]:
    request = event.request
    out: dict[str, Any] = {}
    if request.query:
        out["urlPath"] = request.path
    else:
        out["url"] = request.url
    out["method"] = request.method
    for name, options in (spec.get("captureHeaders") or {}).items():
        value = request.header(name)
        if value is not None:
            pattern: dict[str, Any] = {"equalTo": value}
            if isinstance(options, dict) and options.get("caseInsensitive"):
                pattern["caseInsensitive"] = True
            out.setdefault("headers", {})[name] = pattern
    if request.query:
        out["queryParameters"] = {
            k: {"hasExactly": [{"equalTo": v} for v in values]} for k, values in request.query.items()
        }
    if request.body:
        out["bodyPatterns"] = [_body_pattern(event, spec.get("requestBodyPattern") or {})]
    return out


def _body_pattern(event: ServeEvent, options: Mapping[str, Any]) -> dict[str, Any]:
    text = event.request.body_text
    matcher = options.get("matcher", "auto")
    if matcher == "auto":
        try:
            json.loads(text)
            matcher = "equalToJson"
        except ValueError:
            ctype = (event.request.header("content-type") or "").lower()
            matcher = "equalToXml" if "xml" in ctype else "equalTo"
    if matcher == "equalToJson":
        return {
            "equalToJson": text,
            "ignoreArrayOrder": options.get("ignoreArrayOrder", True),
            "ignoreExtraElements": options.get("ignoreExtraElements", True),
        }
    if matcher == "equalToXml":
        return {"equalToXml": text}
    return {"equalTo": text, "caseInsensitive": bool(options.get("caseInsensitive", False))}


def _response(event: ServeEvent) -> dict[str, Any]:
    resp = event.response
    out: dict[str, Any] = {"status": resp.status}
    ctype = next((v for k, v in resp.headers if k.lower() == "content-type"), "").lower()
    if resp.body:
        textual = not ctype or any(t in ctype for t in _TEXT_TYPES)
        try:
            text = resp.body.decode("utf-8") if textual else None
        except UnicodeDecodeError:
            text = None
        if text is not None:
            out["body"] = text
        else:
            out["base64Body"] = base64.b64encode(resp.body).decode()
    headers: dict[str, Any] = {}
    for k, v in resp.headers:
        if k.lower() in _DROP_HEADERS:
            continue
        headers[k] = (
            v if k not in headers else [*([headers[k]] if isinstance(headers[k], str) else headers[k]), v]
        )
    if headers:
        out["headers"] = headers
    return out


def stubs_from_events(events: list[ServeEvent], spec: Mapping[str, Any]) -> list[StubMapping]:
    """Stub mappings for proxied serve events (oldest first in, newest first out, as WireMock answers)."""
    filters = spec.get("filters") or {}
    wanted_ids = set(filters.get("ids") or [])
    pattern_json = {k: v for k, v in filters.items() if k not in ("ids", "allowNonProxied")}
    pattern = parse_request_pattern(pattern_json, "/filters") if pattern_json else None
    chosen = [
        e
        for e in events
        if (not wanted_ids or e.id in wanted_ids) and (pattern is None or pattern.matches(e.request))
    ]
    drafts = [(e, _request_pattern(e, spec), _response(e)) for e in chosen]
    repeats = spec.get("repeatsAsScenarios", True)
    groups: dict[str, list[int]] = {}
    for i, (_, req, _) in enumerate(drafts):
        groups.setdefault(json.dumps(req, sort_keys=True), []).append(i)
    mappings: list[dict[str, Any]] = []
    scenario_of: dict[int, tuple[str, int]] = {}
    counter = 0
    if repeats:
        for members in groups.values():
            if len(members) > 1:
                counter += 1
                base = (
                    "scenario-"
                    + str(counter)
                    + "-"
                    + safe_name(drafts[members[0]][0].request.path).replace("_", "-")
                )
                for position, index in enumerate(members):
                    scenario_of[index] = (base, position)
    for i, (event, req, resp) in enumerate(drafts):
        stub_id = new_id()
        mapping: dict[str, Any] = {
            "id": stub_id,
            "name": safe_name(event.request.path),
            "request": req,
            "response": resp,
            "uuid": stub_id,
        }
        if spec.get("persist", True):
            mapping["persistent"] = True
        if i in scenario_of:
            name, position = scenario_of[i]
            total = len(groups[json.dumps(req, sort_keys=True)])
            mapping["scenarioName"] = name
            mapping["requiredScenarioState"] = STARTED if position == 0 else f"{name}-{position + 1}"
            if position < total - 1:
                mapping["newScenarioState"] = f"{name}-{position + 2}"
        mappings.append(mapping)
    return [parse_mapping(m) for m in reversed(mappings)]


class NotRecordingError(StubError):
    """POST /__admin/recordings/stop without a recording in progress."""


class Recorder:
    """WireMock's recorder: ``start`` proxies everything to a target, ``stop`` turns it into stubs."""

    def __init__(self, server: StubServer) -> None:
        self.server = server
        self.status = "NeverStarted"
        self._proxy: StubMapping | None = None
        self._spec: dict[str, Any] = {}

    def start(self, spec: Mapping[str, Any]) -> None:
        target = spec.get("targetBaseUrl")
        if not isinstance(target, str) or not target.startswith(("http://", "https://")):
            raise InvalidStubError(
                'recording needs targetBaseUrl, e.g. {"targetBaseUrl": "http://localhost:8000"}',
                "/targetBaseUrl",
            )
        if self._proxy is not None:  # starting again restarts, as in WireMock
            self.server.registry.remove(self._proxy.id)
        self._spec = dict(spec)
        self._proxy = parse_mapping(
            {"priority": 1, "request": {"method": "ANY"}, "response": {"proxyBaseUrl": target}}
        )
        self.server.registry.add(self._proxy)
        self.status = "Recording"

    def stop(self) -> list[StubMapping]:
        if self.status != "Recording" or self._proxy is None:
            raise NotRecordingError("Not currently recording.")
        proxy = self._proxy
        self.server.registry.remove(proxy.id)
        self._proxy = None
        self.status = "Stopped"
        events = [e for e in self.server.journal.events() if e.stub is not None and e.stub.id == proxy.id]
        return self._keep(stubs_from_events(events, self._spec), self._spec)

    def snapshot(self, spec: Mapping[str, Any]) -> list[StubMapping]:
        events = [
            e
            for e in self.server.journal.events()
            if e.stub is not None and e.stub.response.proxy_base_url is not None
        ]
        return self._keep(stubs_from_events(events, spec), spec)

    def _keep(self, stubs: list[StubMapping], spec: Mapping[str, Any]) -> list[StubMapping]:
        self.server.registry.add_many(reversed(stubs))
        if spec.get("persist", True) and self.server.root_dir is not None:
            from testbed.stubs.files import save_mapping

            for stub in stubs:
                save_mapping(self.server.root_dir, stub)
        return stubs
