"""The unmodified Python `wiremock` client (PyPI 2.7.0) driving testbed through every call it has."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from testbed.stubs import StubServer

wiremock = pytest.importorskip("wiremock")

from wiremock.constants import Config  # noqa: E402
from wiremock.resources.mappings import (  # noqa: E402
    HttpMethods,
    Mapping,
    MappingRequest,
    MappingResponse,
    WireMockMatchers,
)
from wiremock.resources.mappings.resource import Mappings  # noqa: E402
from wiremock.resources.near_misses import NearMissMatchPatternRequest, NearMissMatchRequest  # noqa: E402
from wiremock.resources.near_misses.resource import NearMisses  # noqa: E402
from wiremock.resources.requests.resource import Requests  # noqa: E402
from wiremock.resources.scenarios.resource import Scenarios  # noqa: E402
from wiremock.resources.settings import GlobalSetting  # noqa: E402
from wiremock.resources.settings.resource import GlobalSettings  # noqa: E402


@pytest.fixture
def server() -> Iterator[StubServer]:
    with StubServer() as s:
        old = Config.base_url
        Config.base_url = s.url + "/__admin"
        try:
            yield s
        finally:
            Config.base_url = old


def _mapping(path: str, body: str = "ok", **kw: object) -> Mapping:
    return Mapping(
        request=MappingRequest(method=HttpMethods.GET, url_path=path),
        response=MappingResponse(status=200, body=body),
        persistent=False,
        **kw,
    )


def test_mappings_crud(server: StubServer) -> None:
    created = Mappings.create_mapping(_mapping("/a", metadata={"team": "pay"}))
    assert created.id
    assert requests.get(server.url + "/a", timeout=5).text == "ok"

    everything = Mappings.retrieve_all_mappings()
    assert everything.meta.total == 1 and everything.mappings[0].id == created.id

    assert Mappings.retrieve_mapping(created.id).request.url_path == "/a"

    created.response = MappingResponse(status=201, body="updated")
    assert Mappings.update_mapping(created).response.status == 201
    assert requests.get(server.url + "/a", timeout=5).status_code == 201

    Mappings.persist_mappings()
    Mappings.delete_mapping(created.id)
    assert Mappings.retrieve_all_mappings().meta.total == 0

    Mappings.create_mapping(_mapping("/b", metadata={"team": "pay"}))
    Mappings.delete_mapping_by_metadata({"matchesJsonPath": {"expression": "$.team", "equalTo": "pay"}})
    assert Mappings.retrieve_all_mappings().meta.total == 0

    Mappings.create_mapping(_mapping("/c"))
    Mappings.delete_all_mappings()
    assert len(server.registry) == 0
    Mappings.create_mapping(_mapping("/d"))
    Mappings.reset_mappings()
    assert len(server.registry) == 0


def test_requests_journal_calls(server: StubServer) -> None:
    Mappings.create_mapping(
        Mapping(
            request=MappingRequest(
                method=HttpMethods.POST,
                url_path="/pay",
                body_patterns=[{WireMockMatchers.EQUAL_TO_JSON: {"amount": 10}}],
            ),
            response=MappingResponse(status=200, body="paid"),
        )
    )
    assert requests.post(server.url + "/pay", json={"amount": 10}, timeout=5).text == "paid"
    assert requests.post(server.url + "/pay", json={"amount": 11}, timeout=5).status_code == 404

    everything = Requests.get_all_received_requests(limit=10)
    assert everything.meta.total == 2
    one = Requests.get_request(server.journal.events()[0].id)
    assert one.request.url == "/pay"

    pattern = NearMissMatchPatternRequest(url_path="/pay", method="POST")
    assert Requests.get_matching_request_count(pattern).count == 2
    assert len(Requests.get_matching_requests(pattern).requests) == 2

    unmatched = Requests.get_unmatched_requests()
    assert [r.body for r in unmatched.requests] == ['{"amount": 11}']
    misses = Requests.get_unmatched_requests_near_misses()
    assert misses.near_misses[0].match_result.distance > 0

    Requests.reset_request_journal()  # POST /__admin/requests/reset: gone from WireMock 3, kept here
    assert Requests.get_all_received_requests().meta.total == 0


def test_near_misses_scenarios_and_settings(server: StubServer) -> None:
    Mappings.create_mapping(_mapping("/near"))
    requests.get(server.url + "/neat", timeout=5)

    by_request = NearMisses.find_nearest_misses_by_request(NearMissMatchRequest(url="/neat", method="GET"))
    assert by_request.near_misses[0].match_result.distance > 0

    by_pattern = NearMisses.find_nearest_misses_by_request_pattern(
        NearMissMatchPatternRequest(url="/near", method="GET")
    )
    assert by_pattern.near_misses[0].request.url == "/neat"

    Mappings.create_mapping(
        Mapping(
            request=MappingRequest(method=HttpMethods.GET, url_path="/flow"),
            response=MappingResponse(status=200, body="second"),
            scenario_name="flow",
            required_scenario_state="Started",
            new_scenario_state="done",
        )
    )
    requests.get(server.url + "/flow", timeout=5)
    assert server.scenarios.state("flow") == "done"
    Scenarios.reset_all_scenarios()
    assert server.scenarios.state("flow") == "Started"

    settings = GlobalSettings.update_global_settings(GlobalSetting(fixed_delay=20))
    assert settings.fixed_delay == 20  # WireMock 3 answers an empty body here; the client needs JSON
    GlobalSettings.update_global_settings(GlobalSetting(fixed_delay=0))
