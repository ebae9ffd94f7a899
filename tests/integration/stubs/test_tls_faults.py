"""TLS faults on the stub: real clients (httpx, requests, urllib) refuse each bad certificate and accept the
trusted one; mutual TLS accepts a client certificate and refuses a client without one."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import httpx
import pytest
import requests

from testbed.stubs import StubError, StubServer, get
from testbed.stubs.tls import TLS_FAULTS

BAD_CERTIFICATES = [f for f in TLS_FAULTS if f != "require-client-cert"]


@pytest.fixture(scope="module")
def server() -> Iterator[StubServer]:
    with StubServer(https=True) as s:
        s.add_mapping(get("/account").will_return(json={"balance": 10}).to_json())
        yield s


def _httpx(url: str, server: StubServer) -> object:
    return httpx.get(url, verify=ssl.create_default_context(cafile=str(server.ca_bundle)), timeout=5).json()


def _requests(url: str, server: StubServer) -> object:
    return requests.get(url, verify=str(server.ca_bundle), timeout=5).json()


def _urllib(url: str, server: StubServer) -> object:
    import json

    context = ssl.create_default_context(cafile=str(server.ca_bundle))
    with urllib.request.urlopen(url, context=context, timeout=5) as r:
        return json.loads(r.read())


CLIENTS: dict[str, tuple[Callable[[str, StubServer], object], tuple[type[BaseException], ...]]] = {
    "httpx": (_httpx, (httpx.ConnectError,)),
    "requests": (_requests, (requests.exceptions.SSLError,)),
    "urllib": (_urllib, (urllib.error.URLError, ssl.SSLError)),
}


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_the_trusted_certificate_is_accepted(server: StubServer, client: str) -> None:
    call, _ = CLIENTS[client]
    assert call(server.https_url + "/account", server) == {"balance": 10}


@pytest.mark.parametrize("client", sorted(CLIENTS))
@pytest.mark.parametrize("fault", BAD_CERTIFICATES)
def test_a_verifying_client_refuses_the_bad_certificate(server: StubServer, fault: str, client: str) -> None:
    call, refused = CLIENTS[client]
    with pytest.raises(refused) as info:
        call(server.https_url_with(fault) + "/account", server)
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value) or "certificate verify failed" in str(info.value)


@pytest.mark.parametrize("fault", BAD_CERTIFICATES)
def test_a_client_that_does_not_verify_is_served(server: StubServer, fault: str) -> None:
    """The planted bug these ports exist to catch: verify=False talks to any of them."""
    r = httpx.get(server.https_url_with(fault) + "/account", verify=False, timeout=5)
    assert r.json() == {"balance": 10}


def test_each_fault_has_its_own_port_and_the_same_stubs(server: StubServer) -> None:
    urls = {server.https_url_with(f) for f in TLS_FAULTS}
    assert len(urls) == len(TLS_FAULTS) and server.https_url not in urls
    assert server.https_url_with("expired") == server.https_url_with("expired")  # started once


def test_mutual_tls_accepts_the_client_certificate_and_refuses_none(server: StubServer) -> None:
    url = server.https_url_with("require-client-cert") + "/account"
    mutual = ssl.create_default_context(cafile=str(server.ca_bundle))
    mutual.load_cert_chain(str(server.client_cert))
    assert httpx.get(url, verify=mutual, timeout=5).json() == {"balance": 10}
    assert requests.get(url, verify=str(server.ca_bundle), cert=str(server.client_cert), timeout=5).ok
    with pytest.raises((httpx.ReadError, httpx.ConnectError, httpx.RemoteProtocolError)):
        httpx.get(url, verify=ssl.create_default_context(cafile=str(server.ca_bundle)), timeout=5)
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url, verify=str(server.ca_bundle), timeout=5)


def test_an_unknown_fault_names_the_ones_there_are(server: StubServer) -> None:
    with pytest.raises(StubError, match="unknown TLS fault 'expird'; use one of: untrusted-ca, expired"):
        server.https_url_with("expird")


HEADER = """
import httpx, pytest, requests
from testbed.stubs import get
"""

FIXTURE_TESTS = """
def test_refuses_an_untrusted_server(http_stub):
    http_stub.stub_for(get("/account").will_return(json={"balance": 10}))
    with pytest.raises(httpx.ConnectError):
        httpx.get(http_stub.https_url_with("untrusted-ca") + "/account", verify=http_stub.ssl_context)

def test_mutual_tls(http_stub):
    http_stub.stub_for(get("/account").will_return(json={"balance": 10}))
    url = http_stub.https_url_with("require-client-cert") + "/account"
    assert httpx.get(url, verify=http_stub.mtls_context).json() == {"balance": 10}
    assert requests.get(url, verify=str(http_stub.ca_bundle), cert=str(http_stub.client_cert)).ok
    http_stub.verify(2, get("/account"))

def test_a_client_without_verification_is_caught(http_stub):
    http_stub.stub_for(get("/account").will_return(json={"balance": 10}))
    with pytest.raises(httpx.ConnectError):  # fails: verify=False is the bug the fault port exposes
        httpx.get(http_stub.https_url_with("expired") + "/account", verify=False)
"""


@pytest.mark.parametrize("in_process", [True, False])
def test_from_the_fixture_in_one_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, in_process: bool
) -> None:
    if not in_process:
        pytester.makepyprojecttoml("[tool.testbed.http]\nin_process = false\nhttps = true\n")
    pytester.makepyfile(HEADER + FIXTURE_TESTS)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("PYTEST_PLUGINS", "testbed.plugin")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    assert "test_a_client_without_verification_is_caught" in result.stdout.str()
