"""The pytest side: the `http_stub` fixture, run through pytester as a user would."""

from __future__ import annotations

import pytest


def lean(monkeypatch: pytest.MonkeyPatch) -> None:
    """Subprocess runs load only testbed's plugin (not every plugin of the venv): seconds saved each."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("PYTEST_PLUGINS", "testbed.plugin")


HEADER = """
import httpx
import pytest
from testbed.stubs import get, post
"""


def test_stub_call_and_verify(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        HEADER
        + """
def test_charge(http_stub):
    http_stub.stub_for(post("/v1/payments/charge").with_json({"amount": 5000})
                       .will_return(status=200, json={"status": "approved"}))
    r = httpx.post(http_stub.url + "/v1/payments/charge", json={"amount": 5000})
    assert r.json() == {"status": "approved"}
    assert r.headers["Matched-Stub-Id"]
    http_stub.verify(1, post("/v1/payments/charge").with_json({"amount": 5000}))
    http_stub.verify(0, get("/v1/payments/charge"))
"""
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_unmatched_request_fails_the_test_with_the_closest_stub(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        HEADER
        + """
def test_wrong_amount(http_stub):
    http_stub.stub_for(post("/v1/payments/charge").with_json({"amount": 5000, "currency": "EUR"})
                       .will_return(json={"status": "approved"}).named("charge"))
    r = httpx.post(http_stub.url + "/v1/payments/charge", json={"amount": 4000, "currency": "EUR"})
    assert r.status_code == 404
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)  # the unmatched request is the test's failure, not an error of its teardown
    out = result.stdout.str()
    assert "1 request(s) in this test matched no stub" in out
    assert "closest stub 'charge'" in out
    assert "✓ url" in out and "✗ body" in out
    assert '-  "amount": 5000,' in out and '+  "amount": 4000,' in out
    assert "fail_on_unmatched=False" in out


def test_marker_allows_unmatched_requests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        HEADER
        + """
@pytest.mark.testbed(fail_on_unmatched=False)
def test_probe(http_stub):
    assert httpx.get(http_stub.url + "/nothing").status_code == 404
    assert len(http_stub.unmatched) == 1
"""
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_config_allows_unmatched_requests(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("[tool.testbed.http]\nfail_on_unmatched = false\n")
    pytester.makepyfile(
        HEADER
        + """
def test_probe(http_stub):
    assert httpx.get(http_stub.url + "/nothing").status_code == 404
"""
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_failed_verify_lists_the_requests_received(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        HEADER
        + """
def test_count(http_stub):
    http_stub.stub_for(post("/v1/payments/charge").will_return(json={}))
    httpx.post(http_stub.url + "/v1/payments/charge", json={"amount": 1})
    http_stub.verify(2, post("/v1/payments/charge"))
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "expected 2 request(s) matching POST /v1/payments/charge, received 1" in out
    assert "POST /v1/payments/charge" in out
    assert "session.py" not in out  # __tracebackhide__: the user sees their test, not our frames


def test_each_test_starts_clean(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        HEADER
        + """
def test_first(http_stub):
    http_stub.stub_for(get("/only-in-first").will_return(body="x"))
    assert httpx.get(http_stub.url + "/only-in-first").text == "x"

@pytest.mark.testbed(fail_on_unmatched=False)
def test_second(http_stub):
    assert httpx.get(http_stub.url + "/only-in-first").status_code == 404
    assert len(http_stub.requests) == 1

def test_same_server_for_the_session(http_stub, testbed_http_stub_server):
    assert http_stub.url == testbed_http_stub_server.url
"""
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=3)


def test_mapping_files_from_config_and_scenarios(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.testbed.http]\nmappings = "stubs"\n')
    pytester.mkdir("stubs")
    pytester.mkdir("stubs/mappings")
    pytester.mkdir("stubs/__files")
    (pytester.path / "stubs/__files/user.json").write_text('{"id": 1}')
    (pytester.path / "stubs/mappings/user.json").write_text(
        '{"request": {"method": "GET", "urlPath": "/user"}, "response": {"bodyFileName": "user.json"}}'
    )
    pytester.makepyfile(
        HEADER
        + """
def test_file_stub(http_stub):
    assert httpx.get(http_stub.url + "/user").json() == {"id": 1}

def test_added_and_file_stubs(http_stub):
    http_stub.stub_for(get("/state").will_return(body="one").in_scenario("s", when="Started", then="two"))
    http_stub.stub_for(get("/state").will_return(body="two").in_scenario("s", when="two"))
    assert httpx.get(http_stub.url + "/state").text == "one"
    assert httpx.get(http_stub.url + "/state").text == "two"
    assert http_stub.scenario_state("s") == "two"
    assert httpx.get(http_stub.url + "/user").status_code == 200
"""
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_https_and_ca_bundle(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(
        HEADER
        + """
import ssl

def test_tls(http_stub):
    http_stub.stub_for(get("/secure").will_return(json={"ok": True}))
    ctx = ssl.create_default_context(cafile=str(http_stub.ca_bundle))
    assert httpx.get(http_stub.https_url + "/secure", verify=ctx).json() == {"ok": True}
    assert httpx.get(http_stub.https_url + "/secure", verify=http_stub.ssl_context).json() == {"ok": True}
"""
    )
    # In a subprocess: an in-process pytester run unloads the modules it imported (cryptography's among
    # them), and a second import of cryptography's bindings in one interpreter breaks it.
    lean(monkeypatch)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_bad_mapping_file_fails_with_the_file_and_field(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.testbed.http]\nmappings = "stubs"\n')
    pytester.mkdir("stubs")
    pytester.mkdir("stubs/mappings")
    (pytester.path / "stubs/mappings/broken.json").write_text(
        '{"request": {"method": "GET", "urlPath": "/x", "headers": {"A": {"equalsTo": "1"}}}, "response": {}}'
    )
    pytester.makepyfile(
        HEADER
        + """
def test_uses_stubs(http_stub):
    pass
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert "broken.json" in out and "/request/headers/A" in out and "not a valid match operation" in out


def test_under_xdist_each_worker_has_its_own_server(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        HEADER
        + """
import os

@pytest.mark.parametrize("n", range(4))
def test_worker(http_stub, n):
    http_stub.stub_for(get("/who").will_return(body=os.environ.get("PYTEST_XDIST_WORKER", "main")))
    assert httpx.get(http_stub.url + "/who").text == os.environ.get("PYTEST_XDIST_WORKER", "main")
    assert len(http_stub.requests) == 1
"""
    )
    lean(monkeypatch)
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "xdist", "-n", "2").assert_outcomes(
        passed=4
    )


def test_own_process_mode_behaves_the_same(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyprojecttoml('[tool.testbed.http]\nin_process = false\nmappings = "stubs"\n')
    pytester.mkdir("stubs")
    pytester.mkdir("stubs/mappings")
    (pytester.path / "stubs/mappings/ping.json").write_text(
        '{"request": {"method": "GET", "urlPath": "/ping"}, "response": {"body": "pong"}}'
    )
    pytester.makepyfile(
        HEADER
        + """
import os

def test_stub_and_verify(http_stub, testbed_http_stub_server):
    assert testbed_http_stub_server.__class__.__name__ == "RemoteStubServer"
    http_stub.stub_for(post("/charge").with_json({"amount": 1}).will_return(json={"ok": True}))
    assert httpx.post(http_stub.url + "/charge", json={"amount": 1}).json() == {"ok": True}
    assert httpx.get(http_stub.url + "/ping").text == "pong"
    http_stub.verify(1, post("/charge").with_json({"amount": 1}))
    http_stub.stub_for(get("/s").will_return(body="a").in_scenario("s", when="Started", then="b"))
    httpx.get(http_stub.url + "/s")
    assert http_stub.scenario_state("s") == "b"

def test_unmatched_fails(http_stub):
    httpx.post(http_stub.url + "/charge", json={"amount": 2})
"""
    )
    lean(monkeypatch)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    assert "matched no stub" in result.stdout.str() and "POST /charge" in result.stdout.str()


def test_a_dead_own_process_server_fails_the_next_test_naming_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyprojecttoml("[tool.testbed.http]\nin_process = false\n")
    pytester.makepyfile(
        HEADER
        + """
import os, signal

def test_a_kills_the_server(http_stub, testbed_http_stub_server):
    os.kill(testbed_http_stub_server.pid, signal.SIGKILL)

def test_b_uses_it(http_stub):
    pass
"""
    )
    lean(monkeypatch)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    # test_a's own teardown (its journal check) and test_b's setup both fail, naming the server
    result.assert_outcomes(passed=1, errors=2)
    out = result.stdout.str()
    # counted in the error reports: where CI is set, pytest prints the summary lines untruncated too
    reports = out.split("short test summary info")[0]
    assert reports.count("[HTTP stub] the HTTP stub server process") == 2
    assert "is no longer running" in out and "serving: http://127.0.0.1:" in out
    assert "During handling of the above exception" not in out  # no bare ConnectionRefusedError first
