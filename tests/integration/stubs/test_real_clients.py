"""Real HTTP clients against real faults and delays: the reset, the timeout and the retry really happen."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import httpx
import pytest
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from testbed.stubs import StubServer, get


@pytest.fixture
def server() -> Iterator[StubServer]:
    with StubServer() as s:
        yield s


def _fault(server: StubServer, fault: str) -> None:
    server.add_mapping(get("/fault").will_fault(fault).to_json())


@pytest.mark.parametrize(
    ("fault", "httpx_error", "requests_error"),
    [
        ("CONNECTION_RESET_BY_PEER", (httpx.ReadError, httpx.RemoteProtocolError), requests.ConnectionError),
        ("EMPTY_RESPONSE", httpx.RemoteProtocolError, requests.ConnectionError),
        ("MALFORMED_RESPONSE_CHUNK", httpx.RemoteProtocolError, requests.exceptions.ChunkedEncodingError),
        ("RANDOM_DATA_THEN_CLOSE", httpx.RemoteProtocolError, requests.ConnectionError),
    ],
)
def test_faults_reach_the_client(
    server: StubServer,
    fault: str,
    httpx_error: type[Exception] | tuple[type[Exception], ...],
    requests_error: type[Exception],
) -> None:
    _fault(server, fault)
    with httpx.Client(base_url=server.url, timeout=5) as client, pytest.raises(httpx_error):
        client.get("/fault")
    with pytest.raises(requests_error):
        requests.get(server.url + "/fault", timeout=5)
    assert len(server.journal) == 2


def test_connection_reset_is_a_real_tcp_reset(server: StubServer) -> None:
    import socket

    _fault(server, "CONNECTION_RESET_BY_PEER")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /fault HTTP/1.1\r\nHost: x\r\n\r\n")
        with pytest.raises(ConnectionResetError):
            sock.recv(100)


def test_fixed_delay_trips_the_client_timeout(server: StubServer) -> None:
    server.add_mapping(get("/slow").will_return(body="late").with_delay(800).to_json())
    with httpx.Client(base_url=server.url, timeout=0.2) as client, pytest.raises(httpx.ReadTimeout):
        client.get("/slow")
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(server.url + "/slow", timeout=0.2)
    # The stub did serve both (the timeouts are the clients giving up on a delayed answer, not a refusal).
    assert [(e.request.url, e.response.status) for e in server.journal.events()] == [("/slow", 200)] * 2
    with httpx.Client(base_url=server.url, timeout=3) as client:
        assert client.get("/slow").text == "late"


def _raw_chunks(port: int, path: str) -> list[bytes]:
    """The chunks of a chunked response as they are on the wire."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    chunks = []
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return chunks
        chunks.append(rest[:size])
        rest = rest[size + 2 :]


def test_chunked_dribble_arrives_in_pieces_within_a_read_timeout(server: StubServer) -> None:
    server.add_mapping(get("/drip").will_return(body="x" * 40).with_chunked_dribble(4, 800).to_json())
    assert _raw_chunks(server.port, "/drip") == [b"x" * 10] * 4
    # 800 ms in all, 200 ms between pieces: a client with a 0.6 s read timeout still gets the whole body,
    # because each piece resets its read timer.
    with httpx.Client(base_url=server.url, timeout=0.6) as client:
        r = client.get("/drip")
    assert r.text == "x" * 40
    assert r.headers["transfer-encoding"] == "chunked"


def test_urllib3_retry_retries_a_503_then_succeeds(server: StubServer) -> None:
    server.add_mapping(
        get("/flaky").will_return(503).in_scenario("flaky", when="Started", then="up").to_json()
    )
    server.add_mapping(get("/flaky").will_return(body="ok").in_scenario("flaky", when="up").to_json())
    session = requests.Session()
    session.mount(
        "http://", HTTPAdapter(max_retries=Retry(total=3, status_forcelist=[503], backoff_factor=0))
    )
    with session:
        assert session.get(server.url + "/flaky", timeout=5).text == "ok"
    assert [e.response.status for e in server.journal.events()] == [503, 200]


def test_urllib3_retry_recovers_from_a_connection_reset(server: StubServer) -> None:
    server.add_mapping(
        get("/reset-once")
        .will_fault("CONNECTION_RESET_BY_PEER")
        .in_scenario("r", when="Started", then="ok")
        .to_json()
    )
    server.add_mapping(get("/reset-once").will_return(body="recovered").in_scenario("r", when="ok").to_json())
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=Retry(total=2, read=2, backoff_factor=0)))
    with session:
        assert session.get(server.url + "/reset-once", timeout=5).text == "recovered"
    assert len(server.journal) == 2


def test_without_retry_the_reset_surfaces(server: StubServer) -> None:
    server.add_mapping(
        get("/reset-once")
        .will_fault("CONNECTION_RESET_BY_PEER")
        .in_scenario("r", when="Started", then="ok")
        .to_json()
    )
    server.add_mapping(get("/reset-once").will_return(body="recovered").in_scenario("r", when="ok").to_json())
    with requests.Session() as session, pytest.raises(requests.ConnectionError):
        session.get(server.url + "/reset-once", timeout=5)


def test_keep_alive_connection_is_reused(server: StubServer) -> None:
    server.add_mapping(get("/k").will_return(body="k").to_json())
    with httpx.Client(base_url=server.url) as client:
        for _ in range(5):
            client.get("/k")
    ports = {e.request.client_ip for e in server.journal.events()}
    assert ports == {"127.0.0.1"}
    assert len(server.journal) == 5


def test_https_with_the_throwaway_ca(server: StubServer) -> None:
    server.add_mapping(get("/tls").will_return(json={"secure": True}).to_json())
    server.enable_https()
    trusting = ssl.create_default_context(cafile=str(server.ca_bundle))
    with httpx.Client(base_url=server.https_url, verify=trusting) as client:
        assert client.get("/tls").json() == {"secure": True}
    assert requests.get(server.https_url + "/tls", verify=str(server.ca_bundle), timeout=5).ok
    with httpx.Client(base_url=server.https_url) as untrusting, pytest.raises(httpx.ConnectError):
        untrusting.get("/tls")  # the system trust store does not know the throwaway CA: verification is real
    assert server.journal.events()[0].request.scheme == "https"
