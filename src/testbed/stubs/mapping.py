"""Stub mappings: a request pattern, a response definition, a priority and an optional scenario step."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from testbed.stubs.errors import InvalidStubError, check_known_keys
from testbed.stubs.ids import new_id, normalise_id
from testbed.stubs.matching import RequestPattern, parse_request_pattern
from testbed.stubs.responses import ResponseDefinition, parse_response

DEFAULT_PRIORITY = 5
STARTED = "Started"
# The keys WireMock 3's StubMapping accepts; any other is refused, as WireMock does (422).
MAPPING_KEYS = frozenset(
    {
        "id",
        "uuid",
        "name",
        "request",
        "response",
        "persistent",
        "priority",
        "scenarioName",
        "requiredScenarioState",
        "newScenarioState",
        "postServeActions",
        "serveEventListeners",
        "metadata",
        "insertionIndex",
        "$schema",
    }
)


@dataclass(frozen=True, eq=False)
class StubMapping:
    """One WireMock stub mapping, parsed; ``to_json`` gives WireMock's echo of it."""

    id: str
    request: RequestPattern
    response: ResponseDefinition
    name: str | None = None
    priority: int | None = None
    scenario_name: str | None = None
    required_scenario_state: str | None = None
    new_scenario_state: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    persistent: bool | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = None  # the file it was loaded from, if any

    @property
    def effective_priority(self) -> int:
        return DEFAULT_PRIORITY if self.priority is None else self.priority

    @property
    def label(self) -> str:
        return self.name or self.id

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in self.raw.items() if k not in ("id", "uuid")}
        request = dict(out.get("request") or {})
        request.setdefault("method", "ANY")
        response = dict(out.get("response") or {})
        response.setdefault("status", 200)
        out["request"], out["response"] = request, response
        return {"id": self.id, **out, "uuid": self.id}


def parse_mapping(obj: Any, *, source: str | None = None, pointer: str = "") -> StubMapping:
    """A StubMapping from WireMock JSON. InvalidStubError names the file (``source``) and the field."""
    try:
        if not isinstance(obj, dict):
            raise InvalidStubError("a stub mapping must be a JSON object", pointer)
        check_known_keys(obj, MAPPING_KEYS, pointer, "stub mapping")
        given = obj.get("id") or obj.get("uuid")
        mapping_id = new_id() if given is None else normalise_id(str(given))
        if mapping_id is None:
            raise InvalidStubError(f"id must be a UUID, got {json.dumps(given)}", f"{pointer}/id")
        if "request" not in obj:
            raise InvalidStubError("a stub mapping needs a request pattern", f"{pointer}/request")
        request = parse_request_pattern(obj.get("request"), f"{pointer}/request")
        response = parse_response(obj.get("response"), f"{pointer}/response")
        priority = obj.get("priority")
        if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
            raise InvalidStubError(
                f"priority must be an integer (1 is highest), got {json.dumps(priority)}",
                f"{pointer}/priority",
            )
        if obj.get("postServeActions") is not None or obj.get("serveEventListeners") is not None:
            from testbed.stubs.webhooks import webhook_parameters

            webhook_parameters(obj)  # validate now, so a bad webhook fails when the stub is added
        metadata = obj.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise InvalidStubError("metadata must be a JSON object", f"{pointer}/metadata")
        raw = dict(obj)
        raw.pop("$schema", None)
        return StubMapping(
            id=mapping_id,
            request=request,
            response=response,
            name=str(obj["name"]) if obj.get("name") is not None else None,
            priority=priority,
            scenario_name=_opt_str(obj, "scenarioName"),
            required_scenario_state=_opt_str(obj, "requiredScenarioState"),
            new_scenario_state=_opt_str(obj, "newScenarioState"),
            metadata=metadata,
            persistent=obj.get("persistent"),
            raw=raw,
            source=source,
        )
    except InvalidStubError as exc:
        if source and not exc.source:
            raise InvalidStubError(exc.detail, exc.pointer, source=source) from exc
        raise


def _opt_str(obj: Mapping[str, Any], key: str) -> str | None:
    v = obj.get(key)
    return None if v is None else str(v)
