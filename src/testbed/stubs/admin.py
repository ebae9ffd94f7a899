"""The admin API under /__admin: WireMock 3's routes and JSON shapes, plus the two 2.x routes the Python
``wiremock`` client still calls (POST /requests/reset, and a JSON answer from POST /settings)."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from testbed.stubs import bounded_json
from testbed.stubs.errors import InvalidStubError
from testbed.stubs.files import body_file, parse_mapping_document, save_mapping
from testbed.stubs.journal import ServeEvent
from testbed.stubs.mapping import StubMapping, parse_mapping
from testbed.stubs.matching import RequestPattern, parse_request_pattern
from testbed.stubs.near_miss import near_misses_for_pattern, near_misses_for_request
from testbed.stubs.operators import parse_value_pattern
from testbed.stubs.request import Request

if TYPE_CHECKING:
    from testbed.stubs.server import Reply, StubServer

JSON = [("Content-Type", "application/json")]
_UUID = r"[0-9a-fA-F-]{36}"


def _json_reply(obj: Any, status: int = 200) -> Reply:
    from testbed.stubs.server import Reply

    return Reply(status, list(JSON), json.dumps(obj, indent=2).encode())


def _empty(status: int = 200) -> Reply:
    from testbed.stubs.server import Reply

    return Reply(status)


def invalid_reply(exc: InvalidStubError) -> Reply:
    """WireMock's 422 answer for a payload it cannot parse."""
    source: dict[str, str] = {"pointer": exc.pointer} if exc.pointer else {}
    return _json_reply(
        {"errors": [{"code": 10, "source": source, "title": "Error parsing JSON", "detail": exc.detail}]}, 422
    )


def _body_json(request: Request) -> Any:
    text = request.body_text.strip()
    if not text:
        return {}
    try:
        return bounded_json.loads(text)
    except ValueError as exc:  # JsonTooDeepError included: a 422, never a RecursionError
        raise InvalidStubError(str(exc)) from exc


def _normalised(stub: StubMapping) -> dict[str, Any]:
    return stub.to_json()


Route = tuple[str, re.Pattern[str], Callable[..., "Reply"]]


class AdminApi:
    """Dispatches /__admin requests for one StubServer."""

    def __init__(self, server: StubServer) -> None:
        self.server = server
        r = self._route
        self.routes: list[Route] = [
            r("GET", r"/", self.list_mappings),
            r("GET", r"/mappings", self.list_mappings),
            r("POST", r"/mappings", self.create_mapping),
            r("DELETE", r"/mappings", self.delete_mappings),
            r("POST", r"/mappings/reset", self.reset_mappings),
            r("POST", r"/mappings/save", self.save_mappings),
            r("POST", r"/mappings/import", self.import_mappings),
            r("POST", r"/mappings/find-by-metadata", self.find_by_metadata),
            r("POST", r"/mappings/remove-by-metadata", self.remove_by_metadata),
            r("POST", r"/mappings/remove", self.remove_mapping_by_body),
            r("POST", r"/mappings/edit", self.edit_mapping),
            r("GET", r"/mappings/unmatched", self.unmatched_mappings),
            r("DELETE", r"/mappings/unmatched", self.delete_unmatched_mappings),
            r("GET", rf"/mappings/(?P<id>{_UUID})", self.get_mapping),
            r("PUT", rf"/mappings/(?P<id>{_UUID})", self.put_mapping),
            r("DELETE", rf"/mappings/(?P<id>{_UUID})", self.delete_mapping),
            r("GET", r"/requests", self.list_requests),
            r("DELETE", r"/requests", self.reset_requests),
            r("POST", r"/requests/reset", self.reset_requests),
            r("POST", r"/requests/count", self.count_requests),
            r("POST", r"/requests/find", self.find_requests),
            r("GET", r"/requests/unmatched", self.unmatched_requests),
            r("GET", r"/requests/unmatched/near-misses", self.unmatched_near_misses),
            r("POST", r"/requests/remove", self.remove_requests),
            r("POST", r"/requests/remove-by-metadata", self.remove_requests_by_metadata),
            r("GET", rf"/requests/(?P<id>{_UUID})", self.get_request),
            r("DELETE", rf"/requests/(?P<id>{_UUID})", self.delete_request),
            r("POST", r"/near-misses/request", self.near_misses_request),
            r("POST", r"/near-misses/request-pattern", self.near_misses_pattern),
            r("GET", r"/scenarios", self.list_scenarios),
            r("POST", r"/scenarios/reset", self.reset_scenarios),
            r("PUT", r"/scenarios/(?P<name>[^/]+)/state", self.set_scenario_state),
            r("POST", r"/reset", self.reset_all),
            r("GET", r"/settings", self.get_settings),
            r("PUT", r"/settings", self.update_settings),
            r("POST", r"/settings", self.update_settings),
            r("PATCH", r"/settings/extended", self.update_extended_settings),
            r("POST", r"/recordings/start", self.start_recording),
            r("POST", r"/recordings/stop", self.stop_recording),
            r("GET", r"/recordings/status", self.recording_status),
            r("POST", r"/recordings/snapshot", self.snapshot),
            r("GET", r"/files", self.list_files),
            r("GET", r"/files/(?P<name>.+)", self.get_file),
            r("PUT", r"/files/(?P<name>.+)", self.put_file),
            r("DELETE", r"/files/(?P<name>.+)", self.delete_file),
            r("GET", r"/health", self.health),
            # testbed's own (not WireMock's): the HTTPS ports with bad certificates, for RemoteStubServer
            r("POST", r"/testbed/https-faults", self.https_fault),
            r("GET", r"/testbed/client-cert", self.client_cert),
            r("GET", r"/version", self.version),
            r("POST", r"/shutdown", self.shutdown),
        ]

    @staticmethod
    def _route(method: str, path: str, handler: Callable[..., Reply]) -> Route:
        return method, re.compile(path), handler

    def handle(self, request: Request) -> Reply:
        """Answer one /__admin request."""
        from testbed.stubs.server import Reply

        path = request.path[len("/__admin") :]
        if path == "":
            return Reply(302, [("Location", f"{request.base_url}/__admin/")])
        if len(path) > 1:
            path = path.rstrip("/")
        for method, regex, handler in self.routes:
            m = regex.fullmatch(path)
            if m is None:
                continue
            if method != request.method:
                continue
            try:
                return handler(request, **{k: unquote(v) for k, v in m.groupdict().items()})
            except InvalidStubError as exc:
                return invalid_reply(exc)
        return _empty(404)  # WireMock answers an unknown method on a known route with a 404 too

    # -- mappings ----------------------------------------------------------------------------------

    def list_mappings(self, request: Request) -> Reply:
        stubs = list(self.server.registry.ordered())  # as WireMock lists them: priority, then newest first
        q = request.query
        offset = _int_param(q, "offset", 0) or 0
        limit = _int_param(q, "limit", None)
        page = stubs[offset : offset + limit if limit is not None else None]
        return _json_reply({"mappings": [_normalised(s) for s in page], "meta": {"total": len(stubs)}})

    def create_mapping(self, request: Request) -> Reply:
        stub = parse_mapping(_body_json(request))
        if self.server.registry.get(stub.id) is not None:
            return _json_reply(
                {
                    "errors": [
                        {
                            "code": 109,
                            "title": "Duplicate stub mapping ID",
                            "detail": f"ID of the provided stub mapping '{stub.id}' is already taken by another stub "
                            "mapping; PUT /__admin/mappings/{id} replaces one",
                        }
                    ]
                },
                422,
            )
        self.server.registry.add(stub)
        return _json_reply(_normalised(stub), 201)

    def delete_mappings(self, request: Request) -> Reply:
        self.server.registry.clear()
        return _json_reply({})

    def reset_mappings(self, request: Request) -> Reply:
        self.server.reset_mappings()
        return _empty()

    def save_mappings(self, request: Request) -> Reply:
        root = self.server.root_dir
        if root is not None:
            for stub in self.server.registry.all():
                if stub.source is None:
                    save_mapping(root, stub)
        return _empty()

    def import_mappings(self, request: Request) -> Reply:
        data = _body_json(request)
        stubs = parse_mapping_document(data if isinstance(data, dict) else {}, "import")
        options = data.get("importOptions") or {} if isinstance(data, dict) else {}
        policy = str(options.get("duplicatePolicy", "OVERWRITE")).upper()
        registry = self.server.registry
        if options.get("deleteAllNotInImport"):
            keep = {s.id for s in stubs}
            registry.remove_where(lambda s: s.id not in keep)
        for stub in stubs:
            if policy == "IGNORE" and registry.get(stub.id) is not None:
                continue
            registry.add(stub)
        return _empty()

    def _metadata_matcher(self, request: Request) -> Callable[[StubMapping], bool]:
        pattern = parse_value_pattern(_body_json(request))
        return lambda s: pattern.matches(json.dumps(dict(s.metadata)))

    def find_by_metadata(self, request: Request) -> Reply:
        pred = self._metadata_matcher(request)
        found = [s for s in self.server.registry.ordered() if pred(s)]
        return _json_reply({"mappings": [_normalised(s) for s in found], "meta": {"total": len(found)}})

    def remove_by_metadata(self, request: Request) -> Reply:
        self.server.registry.remove_where(self._metadata_matcher(request))
        return _json_reply({})

    def remove_mapping_by_body(self, request: Request) -> Reply:
        data = _body_json(request)
        if not isinstance(data, dict):
            raise InvalidStubError("the stub mapping to remove must be a JSON object (with an id, or its request)")
        target_id = data.get("id") or data.get("uuid")
        if target_id:
            self.server.registry.remove(str(target_id))
        else:
            wanted = json.dumps({k: data.get(k) for k in ("request", "response")}, sort_keys=True)
            self.server.registry.remove_where(
                lambda s: (
                    json.dumps(
                        {"request": s.raw.get("request"), "response": s.raw.get("response")}, sort_keys=True
                    )
                    == wanted
                )
            )
        return _empty()

    def edit_mapping(self, request: Request) -> Reply:
        stub = parse_mapping(_body_json(request))
        if not self.server.registry.replace(stub):
            return _empty(404)
        return _json_reply(_normalised(stub))

    def _served_ids(self) -> set[str]:
        return {e.stub.id for e in self.server.journal.events() if e.stub is not None}

    def unmatched_mappings(self, request: Request) -> Reply:
        served = self._served_ids()
        found = [s for s in self.server.registry.ordered() if s.id not in served]
        return _json_reply({"mappings": [_normalised(s) for s in found], "meta": {"total": len(found)}})

    def delete_unmatched_mappings(self, request: Request) -> Reply:
        served = self._served_ids()
        self.server.registry.remove_where(lambda s: s.id not in served)
        return _json_reply({})

    def get_mapping(self, request: Request, id: str) -> Reply:
        stub = self.server.registry.get(id.lower())
        return _json_reply(_normalised(stub)) if stub else _empty(404)

    def put_mapping(self, request: Request, id: str) -> Reply:
        data = _body_json(request)
        if isinstance(data, dict):
            data = {**data, "id": id}
        stub = parse_mapping(data)
        if not self.server.registry.replace(stub):
            return _empty(404)
        return _json_reply(_normalised(stub))

    def delete_mapping(self, request: Request, id: str) -> Reply:
        return _json_reply({}) if self.server.registry.remove(id.lower()) else _empty(404)

    # -- requests ----------------------------------------------------------------------------------

    def _journal_json(self, events: list[ServeEvent]) -> dict[str, Any]:
        return {
            "requests": [e.to_json() for e in events],
            "meta": {"total": len(events)},
            "requestJournalDisabled": not self.server.journal.enabled,
        }

    def list_requests(self, request: Request) -> Reply:
        events = list(reversed(self.server.journal.events()))
        q = request.query
        if q.get("unmatched", ["false"])[0] == "true":
            events = [e for e in events if not e.was_matched]
        if "since" in q:
            since = _parse_since(q["since"][0])
            events = [e for e in events if e.request.logged_at >= since]
        total = len(events)
        if "limit" in q:
            events = events[: int(q["limit"][0])]
        out = self._journal_json(events)
        out["meta"]["total"] = total
        return _json_reply(out)

    def reset_requests(self, request: Request) -> Reply:
        self.server.journal.clear()
        return _json_reply({})

    def _pattern(self, request: Request) -> RequestPattern:
        return parse_request_pattern(_body_json(request), "")

    def count_requests(self, request: Request) -> Reply:
        pattern = self._pattern(request)
        count = sum(1 for e in self.server.journal.events() if pattern.matches(e.request))
        return _json_reply({"count": count, "requestJournalDisabled": not self.server.journal.enabled})

    def find_requests(self, request: Request) -> Reply:
        pattern = self._pattern(request)
        found = [e.request.to_json() for e in self.server.journal.events() if pattern.matches(e.request)]
        return _json_reply({"requests": found, "requestJournalDisabled": not self.server.journal.enabled})

    def unmatched_requests(self, request: Request) -> Reply:
        events = reversed(self.server.journal.events())  # newest first, as WireMock
        found = [e.request.to_json() for e in events if not e.was_matched]
        return _json_reply({"requests": found, "requestJournalDisabled": not self.server.journal.enabled})

    def unmatched_near_misses(self, request: Request) -> Reply:
        stubs = self.server.registry.ordered()
        misses = []
        for e in reversed(self.server.journal.events()):  # newest first, as WireMock
            if not e.was_matched:
                misses += near_misses_for_request(e.request, stubs, scenarios=self.server.scenarios)
        return _json_reply({"nearMisses": [m.to_json() for m in misses]})

    def remove_requests(self, request: Request) -> Reply:
        pattern = self._pattern(request)
        gone = self.server.journal.remove(lambda e: pattern.matches(e.request))
        return _json_reply({"serveEvents": [e.to_json() for e in gone]})

    def remove_requests_by_metadata(self, request: Request) -> Reply:
        pattern = parse_value_pattern(_body_json(request))
        gone = self.server.journal.remove(
            lambda e: e.stub is not None and pattern.matches(json.dumps(dict(e.stub.metadata)))
        )
        return _json_reply({"serveEvents": [e.to_json() for e in gone]})

    def get_request(self, request: Request, id: str) -> Reply:
        event = self.server.journal.get(id.lower())
        return _json_reply(event.to_json()) if event else _empty(404)

    def delete_request(self, request: Request, id: str) -> Reply:
        self.server.journal.remove(lambda e: e.id == id.lower())
        return _json_reply({})

    # -- near misses -------------------------------------------------------------------------------

    def near_misses_request(self, request: Request) -> Reply:
        data = _body_json(request)
        given = data if isinstance(data, dict) else {}
        logged = Request.from_json(given)
        misses = near_misses_for_request(
            logged, self.server.registry.ordered(), scenarios=self.server.scenarios
        )
        # WireMock echoes the request as it read it: the fields given, and its defaults for the rest
        echo = {k: given[k] for k in ("url", "absoluteUrl", "method", "clientIp", "headers", "cookies") if k in given}
        echo.update(
            {"browserProxyRequest": False, "port": -1, "queryParams": _query_params(logged), "formParams": {}}
        )
        for k in ("body", "bodyAsBase64"):
            if k in given:
                echo[k] = given[k]
        return _json_reply({"nearMisses": [{**m.to_json(), "request": echo} for m in misses]})

    def near_misses_pattern(self, request: Request) -> Reply:
        pattern = self._pattern(request)
        # newest first, as WireMock: equally close requests then rank the latest first
        misses = near_misses_for_pattern(pattern, [e.request for e in reversed(self.server.journal.events())])
        return _json_reply({"nearMisses": [m.to_json() for m in misses]})

    # -- scenarios ---------------------------------------------------------------------------------

    def list_scenarios(self, request: Request) -> Reply:
        return _json_reply({"scenarios": self.server.scenarios.to_json(self.server.registry.in_insertion_order())})

    def reset_scenarios(self, request: Request) -> Reply:
        self.server.scenarios.reset()
        return _json_reply({})

    def set_scenario_state(self, request: Request, name: str) -> Reply:
        known = {s.scenario_name for s in self.server.registry.all()}
        if name not in known:
            return _json_reply({"errors": [{"code": 404, "title": f"Scenario {name} does not exist"}]}, 404)
        data = _body_json(request)
        state = data.get("state") if isinstance(data, dict) else None
        if state is not None:
            possible = self.server.scenarios.possible_states(name, self.server.registry.in_insertion_order())
            if state not in possible:
                return _json_reply(
                    {"errors": [{"code": 11, "title": f"Scenario {name} does not support state {state}"}]}, 422
                )
        self.server.scenarios.set(name, state)
        return _json_reply({})

    # -- recording ---------------------------------------------------------------------------------

    def start_recording(self, request: Request) -> Reply:
        data = _body_json(request)
        self.server.recorder.start(data if isinstance(data, dict) else {})
        return _json_reply({})

    def stop_recording(self, request: Request) -> Reply:
        from testbed.stubs.recording import NotRecordingError

        try:
            stubs = self.server.recorder.stop()
        except NotRecordingError as exc:
            return _json_reply({"errors": [{"code": 30, "title": exc.args[0]}]}, 400)
        return _json_reply({"mappings": [_normalised(s) for s in stubs]})

    def recording_status(self, request: Request) -> Reply:
        return _json_reply({"status": self.server.recorder.status})

    def snapshot(self, request: Request) -> Reply:
        data = _body_json(request)
        stubs = self.server.recorder.snapshot(data if isinstance(data, dict) else {})
        return _json_reply({"mappings": [_normalised(s) for s in stubs]})

    # -- files (__files/ under the root directory) -------------------------------------------------

    def list_files(self, request: Request) -> Reply:
        base = self.server.files_dir()
        names = sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())
        return _json_reply(names)

    def get_file(self, request: Request, name: str) -> Reply:
        from testbed.stubs.server import Reply

        path = body_file(self.server.files_dir().parent, name)
        if not path.is_file():
            return _empty(404)
        return Reply(200, [], path.read_bytes())

    def put_file(self, request: Request, name: str) -> Reply:
        path = body_file(self.server.files_dir().parent, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(request.body)
        return _json_reply(base64.b64encode(request.body).decode())

    def delete_file(self, request: Request, name: str) -> Reply:
        path = body_file(self.server.files_dir().parent, name)
        if path.is_file():
            path.unlink()
        return _empty()

    # -- server ------------------------------------------------------------------------------------

    def reset_all(self, request: Request) -> Reply:
        self.server.reset()
        return _empty()

    def get_settings(self, request: Request) -> Reply:
        return _json_reply({"settings": self.server.settings or {"proxyPassThrough": True}})

    def update_settings(self, request: Request) -> Reply:
        data = _body_json(request)
        if not isinstance(data, dict):
            raise InvalidStubError('settings must be a JSON object such as {"fixedDelay": 500}')
        settings = data.get("settings", data)
        delay = settings.get("fixedDelay")
        if delay is not None and (isinstance(delay, bool) or not isinstance(delay, int)):
            raise InvalidStubError(f"fixedDelay must be milliseconds, got {json.dumps(delay)}", "/fixedDelay")
        # As WireMock: the posted settings replace the previous ones (an absent proxyPassThrough is false)
        extended = self.server.settings.get("extended")
        self.server.settings.clear()
        self.server.settings.update({"proxyPassThrough": False, **settings})
        if extended is not None and "extended" not in settings:
            self.server.settings["extended"] = extended
        # WireMock 3 answers an empty 200; the Python client 2.7.0 calls .json() on it, so answer JSON.
        return _json_reply(self.server.settings)

    def update_extended_settings(self, request: Request) -> Reply:
        data = _body_json(request)
        self.server.settings.setdefault("extended", {}).update(data if isinstance(data, dict) else {})
        return _json_reply(self.server.settings)

    def https_fault(self, request: Request) -> Reply:
        from testbed.stubs.errors import StubError

        data = _body_json(request)
        fault = data.get("fault") if isinstance(data, dict) else None
        if not isinstance(fault, str):
            raise InvalidStubError('post {"fault": "<one of the TLS faults>"}', "/fault")
        try:
            url = self.server.https_url_with(fault)
        except StubError as exc:
            raise InvalidStubError(str(exc), "/fault") from exc
        return _json_reply({"fault": fault, "url": url})

    def client_cert(self, request: Request) -> Reply:
        return _json_reply({"path": str(self.server.client_cert)})

    def health(self, request: Request) -> Reply:
        return _json_reply(
            {
                "status": "healthy",
                "message": "Wiremock is ok",
                "version": _version(),
                "uptimeInSeconds": int(time.time() - self.server.started_at),
                "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            }
        )

    def version(self, request: Request) -> Reply:
        return _json_reply({"version": _version()})

    def shutdown(self, request: Request) -> Reply:
        reply = _empty()
        reply.close_after = True
        return reply


def _version() -> str:
    from testbed.stubs.server import VERSION

    return VERSION


def _int_param(query: dict[str, list[str]], name: str, default: int | None) -> int | None:
    try:
        return int(query[name][0]) if name in query else default
    except ValueError:
        raise InvalidStubError(f"{name} must be a whole number, got {query[name][0]!r}", f"/{name}") from None


def _query_params(request: Request) -> dict[str, Any]:
    return {k: {"key": k, "values": v} for k, v in request.query.items()}


def _parse_since(value: str) -> float:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        try:
            return float(value) / 1000
        except ValueError:
            return 0.0
