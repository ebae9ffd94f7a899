"""HTTP stub fixtures: one WireMock-compatible stub server per test session (so one per xdist worker: it
starts in milliseconds), reset before every test; ``http_stub`` is the per-test view. Everything here calls
testbed.stubs (usable without pytest), imported lazily so sessions that never stub HTTP do not pay for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from testbed.plugin.options import marker_options
from testbed.plugin.session import settings

if TYPE_CHECKING:
    from testbed.stubs import HttpStub, StubServer
    from testbed.stubs.client import RemoteStubServer


@pytest.fixture(scope="session")
def testbed_http_stub_server(pytestconfig: pytest.Config) -> Iterator[StubServer | RemoteStubServer]:
    """The session's HTTP stub server (WireMock-compatible), on an ephemeral loopback port.

    ``[tool.testbed.http] mappings`` names a WireMock root dir (with mappings/ and __files/) loaded at start
    and after every reset; ``https = true`` starts the HTTPS port at once (otherwise on first use);
    ``in_process = false`` runs it as its own process (``python -m testbed.stubs``) instead of a thread.
    """
    from testbed.plugin.env import early_stub_server
    from testbed.stubs import StubServer

    early = early_stub_server(pytestconfig)
    if early is not None:  # started by the settings hand-off ([tool.testbed.env] names {http...})
        yield early
        return
    http = settings(pytestconfig).http
    root_dir = None
    if http.mappings:
        root_dir = Path(http.mappings)
        if not root_dir.is_absolute():
            root_dir = pytestconfig.rootpath / root_dir
    server: StubServer | RemoteStubServer
    if http.in_process:  # the default: measured faster to start and to answer (bench/stubs.py)
        server = StubServer(root_dir=root_dir, https=http.https).start()
    else:
        from testbed.stubs.client import RemoteStubServer

        server = RemoteStubServer.spawn(root_dir=root_dir, https=http.https)
    try:
        if server.load_errors:
            raise server.load_errors[0]
        yield server
    finally:
        server.stop()


@pytest.fixture
def http_stub(
    testbed_http_stub_server: StubServer | RemoteStubServer, request: pytest.FixtureRequest
) -> Iterator[HttpStub]:
    """A stub server for this test: fresh stubs (the configured mapping files only) and an empty journal.

    A request that matched no stub fails the test at teardown, showing the closest stubs; turn that off with
    ``@pytest.mark.testbed(fail_on_unmatched=False)`` or ``[tool.testbed.http] fail_on_unmatched = false``.
    """
    from testbed.stubs import HttpStub

    fail = settings(request.config).http.fail_on_unmatched
    said = marker_options(request.node).fail_on_unmatched
    if said is not None:
        fail = said
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
