"""pytest glue: options, markers and fixtures that call testbed's library layers. Nothing else."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "testbed(isolation=..., leak_check=..., reason=...): per-test testbed options",
    )


# --- HTTP stubs (testbed.stubs) ---
# One in-process stub server per test session (so one per xdist worker: it starts in milliseconds), reset
# before every test; `http_stub` is the per-test view. Everything here calls testbed.stubs (usable without
# pytest), imported lazily so sessions that never stub HTTP do not pay for it.

from collections.abc import Iterator as _Iterator  # noqa: E402
from typing import TYPE_CHECKING as _TYPE_CHECKING  # noqa: E402

if _TYPE_CHECKING:
    from testbed.stubs import HttpStub, StubServer
    from testbed.stubs.client import RemoteStubServer


@pytest.fixture(scope="session")
def testbed_http_stub_server(pytestconfig: pytest.Config) -> _Iterator[StubServer | RemoteStubServer]:
    """The session's HTTP stub server (WireMock-compatible), on an ephemeral loopback port.

    ``[tool.testbed.http] mappings`` names a WireMock root dir (with mappings/ and __files/) loaded at start
    and after every reset; ``https = true`` starts the HTTPS port at once (otherwise on first use);
    ``in_process = false`` runs it as its own process (``python -m testbed.stubs``) instead of a thread.
    """
    from pathlib import Path

    from testbed.config import load_settings
    from testbed.stubs import StubServer

    settings = load_settings(pytestconfig.rootpath).http
    root_dir = None
    if settings.mappings:
        root_dir = Path(settings.mappings)
        if not root_dir.is_absolute():
            root_dir = pytestconfig.rootpath / root_dir
    server: StubServer | RemoteStubServer
    if settings.in_process:  # the default: measured faster to start and to answer (bench/stubs.py)
        server = StubServer(root_dir=root_dir, https=settings.https).start()
    else:
        from testbed.stubs.client import RemoteStubServer

        server = RemoteStubServer.spawn(root_dir=root_dir, https=settings.https)
    try:
        if server.load_errors:
            raise server.load_errors[0]
        yield server
    finally:
        server.stop()


@pytest.fixture
def http_stub(
    testbed_http_stub_server: StubServer | RemoteStubServer, request: pytest.FixtureRequest
) -> _Iterator[HttpStub]:
    """A stub server for this test: fresh stubs (the configured mapping files only) and an empty journal.

    A request that matched no stub fails the test at teardown, showing the closest stubs; turn that off with
    ``@pytest.mark.testbed(fail_on_unmatched=False)`` or ``[tool.testbed.http] fail_on_unmatched = false``.
    """
    from testbed.config import load_settings
    from testbed.stubs import HttpStub

    fail = load_settings(request.config.rootpath).http.fail_on_unmatched
    marker = request.node.get_closest_marker("testbed")
    if marker is not None and "fail_on_unmatched" in marker.kwargs:
        fail = bool(marker.kwargs["fail_on_unmatched"])
    testbed_http_stub_server.reset()
    stub = HttpStub(testbed_http_stub_server, fail_on_unmatched=fail)
    yield stub
    errors = stub.server_errors()
    if errors:
        pytest.fail("[HTTP stub] the stub server failed while answering this test (a testbed bug, please "
                    "report it):\n" + "\n".join(errors), pytrace=False)
    if fail and stub.unmatched:
        pytest.fail(
            f"[HTTP stub] {len(stub.unmatched)} request(s) in this test matched no stub (each got a 404):\n"
            f"{stub.unmatched_report()}\nAdd a stub for them, or allow this with "
            "@pytest.mark.testbed(fail_on_unmatched=False) or [tool.testbed.http] fail_on_unmatched = false.",
            pytrace=False,
        )
