"""An engine added by another package through the ``testbed.engines`` entry point: its config table is
validated, it gets its fixtures, and a test uses it, with no line of testbed changed."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ENGINE_MODULE = '''
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from testbed.config import ServiceSettings, setting
from testbed.engines.base import Endpoint, Engine


@dataclass(frozen=True)
class EchoSettings(ServiceSettings):
    greeting: str = setting("hi", kind="str", doc="what the test sends first")


@dataclass(frozen=True)
class EchoEndpoint(Endpoint):
    label = "echo server"
    greeting: str = "hi"

    @property
    def url(self) -> str:
        return f"echo://{self.host}:{self.port}"


class EchoRunning:
    def __init__(self, endpoint: EchoEndpoint) -> None:
        self._endpoint = endpoint

    def endpoint(self) -> EchoEndpoint:
        return self._endpoint

    def stop(self) -> None:
        pass

    def describe(self) -> dict[str, str]:
        return {"engine": "echo", "url": self._endpoint.url}


class EchoEngine(Engine):
    name = "echo"
    label = "Echo"
    settings_class = EchoSettings
    endpoint_class = EchoEndpoint
    url_fixture = "echo_url"
    runners = ("existing",)

    def attach(self, settings, root, workers):
        where = urlsplit(settings.url)
        return EchoRunning(EchoEndpoint(host=where.hostname, port=where.port, version="1", binary="", source="",
                                        pid=0, start_time=None, log_path="", greeting=settings.greeting))


ENGINE = EchoEngine()
'''

TEST = '''
import socket
from urllib.parse import urlsplit

def test_talks_to_echo(echo_url, testbed_echo_server):
    where = urlsplit(echo_url)
    with socket.create_connection((where.hostname, where.port), timeout=5) as s:
        s.sendall(testbed_echo_server.greeting.encode())
        assert s.recv(100) == b"hello"
'''


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.sendall(self.request.recv(100))


@pytest.fixture
def echo_server() -> Iterator[int]:
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield server.server_address[1]
        server.shutdown()


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A distribution declaring the engine, installed as pip would lay it out (a dist-info on sys.path)."""
    site = tmp_path / "site"
    dist = site / "testbed_echo-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: testbed-echo\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[testbed.engines]\necho = testbed_echo_engine:ENGINE\n")
    (site / "testbed_echo_engine.py").write_text(ENGINE_MODULE)
    monkeypatch.setenv("PYTHONPATH", str(site))
    return site


def test_an_engine_from_another_package_gets_config_and_fixtures(
        pytester: pytest.Pytester, installed: Path, echo_server: int) -> None:
    pytester.makepyprojecttoml(
        f'[tool.testbed.echo]\nrunner = "existing"\nurl = "echo://127.0.0.1:{echo_server}"\ngreeting = "hello"\n')
    pytester.makepyfile(test_echo=TEST)
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*testbed services*", f"echo at echo://127.0.0.1:{echo_server}"])


def test_its_config_table_is_validated_like_a_built_in_one(pytester: pytest.Pytester, installed: Path) -> None:
    pytester.makepyprojecttoml('[tool.testbed.echo]\nrunner = "existing"\ngreting = "hello"\n')
    pytester.makepyfile(test_echo=TEST)
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *unknown key 'greting' in [[]tool.testbed.echo[]]. Did you mean 'greeting'?*"])
    pytester.makepyprojecttoml('[tool.testbed.echo]\nrunner = "local"\n')  # the engine offers 'existing' only
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *runner = 'local' is not one of: existing*"])

