"""Shared servers for the stub integration tests: one WireMock jar and one testbed server per xdist worker."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testbed.stubs import StubServer

REPO = Path(__file__).resolve().parents[3]
DEFAULT_JAR = REPO / ".cache/wiremock/node_modules/wiremock/build/wiremock-standalone-3.13.2.jar"


def wiremock_jar() -> Path | None:
    jar = Path(os.environ.get("TESTBED_WIREMOCK_JAR", DEFAULT_JAR))
    return jar if jar.is_file() else None


def populate_root(root: Path) -> Path:
    """A WireMock root dir both servers share: no mappings, a few body files."""
    (root / "mappings").mkdir(parents=True, exist_ok=True)
    files = root / "__files"
    files.mkdir(parents=True, exist_ok=True)
    (files / "hello.txt").write_text("hello from a file\n")
    (files / "data.json").write_text('{"from": "file", "n": 1}')
    (files / "tpl.txt").write_text("path={{request.path}}")
    return root


class WireMockProcess:
    """The real WireMock 3.13.2 jar on a free loopback port."""

    def __init__(self, jar: Path, root: Path) -> None:
        self.proc = subprocess.Popen(
            [
                "java",
                "-jar",
                str(jar),
                "--port",
                "0",
                "--bind-address",
                "127.0.0.1",
                "--root-dir",
                str(root),
                "--disable-banner",
                "--disable-extensions-scanning",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        lines: list[str] = []
        self.port = 0
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            m = re.match(r"port:\s+(\d+)", line.strip())
            if m:
                self.port = int(m.group(1))
                break
        if not self.port:
            self.stop()
            raise RuntimeError("WireMock did not start:\n" + "".join(lines[-20:]))
        self.url = f"http://127.0.0.1:{self.port}"
        # drain the rest of its output so the pipe never fills
        import threading

        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()
        for _ in range(200):
            try:
                if httpx.get(self.url + "/__admin/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("WireMock did not answer /__admin/health")

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for _ in self.proc.stdout:
            pass

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        if getattr(self, "_drainer", None) is not None:
            self._drainer.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture(scope="session")
def stub_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return populate_root(tmp_path_factory.mktemp("stub-root"))


@pytest.fixture(scope="session")
def wiremock(stub_root: Path) -> Iterator[WireMockProcess]:
    jar = wiremock_jar()
    missing = None
    if jar is None:
        missing = "WireMock jar not found: run `make wiremock` (needs npm) or set TESTBED_WIREMOCK_JAR"
    elif shutil.which("java") is None:
        missing = "java not found: the WireMock conformance suite needs Java 17+"
    if missing:
        if os.environ.get("CI"):  # a skip on CI would hide the whole conformance measure
            pytest.fail(f"{missing}; CI must run the conformance suite against the real jar", pytrace=False)
        pytest.skip(missing)
    assert jar is not None
    wm = WireMockProcess(jar, stub_root)
    yield wm
    wm.stop()


@pytest.fixture(scope="session")
def stub_server(stub_root: Path) -> Iterator[StubServer]:
    with StubServer(root_dir=stub_root) as server:
        yield server
