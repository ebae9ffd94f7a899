"""``HttpStub``: one test's view of a (shared) stub server: stubs, journal, verify, unmatched report."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from testbed.stubs.builder import RequestPatternBuilder, StubBuilder
from testbed.stubs.errors import StubError, UnmatchedRequestsError, VerificationError
from testbed.stubs.files import LoadResult
from testbed.stubs.journal import ServeEvent
from testbed.stubs.mapping import StubMapping
from testbed.stubs.matching import RequestPattern, parse_request_pattern
from testbed.stubs.near_miss import explain, near_misses_for_pattern, near_misses_for_request
from testbed.stubs.request import Request
from testbed.stubs.server import StubServer

if TYPE_CHECKING:
    from testbed.stubs.client import RemoteStubServer

PatternLike = RequestPatternBuilder | Mapping[str, Any] | RequestPattern


def _as_pattern(pattern: PatternLike) -> RequestPattern:
    if isinstance(pattern, RequestPattern):
        return pattern
    if isinstance(pattern, RequestPatternBuilder):
        return parse_request_pattern(pattern.to_json(), "")
    return parse_request_pattern(dict(pattern), "")


def _describe(pattern: PatternLike) -> str:
    if isinstance(pattern, RequestPatternBuilder):
        return pattern.describe()
    if isinstance(pattern, RequestPattern):
        return str(dict(pattern.raw))
    return str(dict(pattern))


class HttpStub:
    """The ``http_stub`` fixture: a stub server's URL, stubs, request journal and verification.

    Everything here also works outside pytest: ``HttpStub(StubServer().start())``.
    """

    def __init__(self, server: StubServer | RemoteStubServer, *, fail_on_unmatched: bool = True) -> None:
        self.server = server
        self.fail_on_unmatched = fail_on_unmatched

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: point the code under test here."""
        return self.server.url

    @property
    def https_url(self) -> str:
        """``https://localhost:<port>``, signed by a throwaway CA (``ca_bundle``); starts on first use."""
        self.server.enable_https()
        return self.server.https_url

    @property
    def ca_bundle(self) -> Path:
        """The PEM CA bundle the client must trust for ``https_url``."""
        self.server.enable_https()
        return self.server.ca_bundle

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """An SSL context trusting only the throwaway CA: ``httpx.Client(verify=http_stub.ssl_context)``."""
        return ssl.create_default_context(cafile=str(self.ca_bundle))

    def https_url_with(self, fault: str) -> str:
        """The base URL of an HTTPS port with a bad certificate, serving this test's stubs.

        ``fault``: untrusted-ca, expired, not-yet-valid, wrong-host, self-signed, or require-client-cert
        (mutual TLS). "The client refuses an untrusted server" is then one line::

            with pytest.raises(httpx.ConnectError):
                httpx.get(http_stub.https_url_with("untrusted-ca") + "/x", verify=http_stub.ssl_context)
        """
        self.server.enable_https()
        return self.server.https_url_with(fault)

    @property
    def client_cert(self) -> Path:
        """PEM file (certificate and key) of a client certificate the require-client-cert port accepts."""
        return self.server.client_cert

    @property
    def mtls_context(self) -> ssl.SSLContext:
        """``ssl_context`` that also presents ``client_cert``: the client side of mutual TLS."""
        context = self.ssl_context
        context.load_cert_chain(str(self.client_cert))
        return context

    def stub_for(self, stub: StubBuilder | Mapping[str, Any]) -> StubMapping:
        """Add a stub (a builder such as ``get("/x").will_return(...)`` or WireMock JSON)."""
        data = stub.to_json() if isinstance(stub, StubBuilder) else dict(stub)
        return self.server.add_mapping(data)

    def load(self, path: str | Path) -> list[StubMapping]:
        """Add the stubs of a WireMock mapping file or folder; a bad file raises, naming it and the field."""
        result: LoadResult = self.server.load_mappings(path)
        if result.errors:
            raise result.errors[0]
        return result.stubs

    def remove(self, stub: StubMapping | str) -> None:
        self.server.remove_mapping(stub if isinstance(stub, str) else stub.id)

    def reset(self) -> None:
        """Stubs back to the configured mapping files, journal and scenarios cleared."""
        self.server.reset()
        for name in ("errors", "webhook_errors"):
            errors = getattr(self.server, name, None)
            if errors:
                errors.clear()

    def set_scenario_state(self, name: str, state: str) -> None:
        self.server.set_scenario_state(name, state)

    def scenario_state(self, name: str) -> str:
        return self.server.scenario_state(name)

    # -- journal -----------------------------------------------------------------------------------

    @property
    def requests(self) -> list[ServeEvent]:
        """Every request this test made, oldest first."""
        return self.server.events()

    @property
    def unmatched(self) -> list[ServeEvent]:
        """Requests that matched no stub."""
        return [e for e in self.requests if not e.was_matched]

    def find(self, pattern: PatternLike) -> list[Request]:
        """Received requests matching ``pattern`` (a builder such as ``post("/x")`` or WireMock JSON)."""
        compiled = _as_pattern(pattern)
        return [e.request for e in self.requests if compiled.matches(e.request)]

    def count(self, pattern: PatternLike) -> int:
        return len(self.find(pattern))

    def verify(self, count: int | None, pattern: PatternLike) -> list[Request]:
        """Assert that exactly ``count`` received requests match ``pattern`` (``None``: at least one).

        The failure lists the requests received, closest first, with a per-field table.
        """
        __tracebackhide__ = True
        found = self.find(pattern)
        if (count is None and found) or len(found) == count:
            return found
        wanted = "at least 1" if count is None else str(count)
        received = [e.request for e in self.requests]
        lines = [
            f"expected {wanted} request(s) matching {_describe(pattern)}, received {len(found)}.",
            f"Requests received in this test ({len(received)}):",
        ]
        lines += [f"  {r.method} {r.url}" for r in received] or ["  (none)"]
        misses = near_misses_for_pattern(_as_pattern(pattern), received)
        if misses and not found:
            lines.append("Closest requests:")
            for m in misses:
                lines.append(explain(m.request, [m]))
        raise VerificationError("\n".join(lines))

    def unmatched_report(self) -> str:
        """A readable account of every unmatched request and the stubs closest to it."""
        stubs = self.server.stubs()
        parts = []
        for event in self.unmatched:
            scenarios = getattr(self.server, "scenarios", None)
            parts.append(
                explain(event.request, near_misses_for_request(event.request, stubs, scenarios=scenarios))
            )
        return "\n".join(parts)

    @property
    def webhook_errors(self) -> list[str]:
        """Webhooks of this test's stubs that could not be delivered (e.g. the callback endpoint was down)."""
        return list(getattr(self.server, "webhook_errors", []))

    def server_errors(self) -> list[str]:
        """Unexpected errors the server hit while answering this test's requests (testbed bugs)."""
        return list(getattr(self.server, "errors", []))

    def check_unmatched(self) -> None:
        """Raise UnmatchedRequestsError if a request of this test matched no stub."""
        __tracebackhide__ = True
        unmatched = self.unmatched
        if unmatched:
            raise UnmatchedRequestsError(
                f"{len(unmatched)} request(s) matched no stub (each got a 404):\n{self.unmatched_report()}\n"
                "Add a stub for them, or allow this with @pytest.mark.testbed(fail_on_unmatched=False) "
                "or [tool.testbed.http] fail_on_unmatched = false."
            )

    def __repr__(self) -> str:
        return f"<HttpStub {self.url}>"


__all__ = ["HttpStub", "StubError"]
