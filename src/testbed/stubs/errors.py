"""Errors of the HTTP stub server: each carries the JSON pointer of the field that was wrong."""

from __future__ import annotations

from testbed.errors import TestbedError


class StubError(TestbedError):
    """Base class of the HTTP stub server's errors."""

    boundary = "HTTP stub"


class InvalidStubError(StubError):
    """A stub mapping, request pattern or admin payload is not valid WireMock JSON.

    ``pointer`` is the JSON pointer of the offending field (``/request/queryParameters/a``), the same
    thing WireMock puts in ``errors[0].source.pointer`` of its 422 answer.
    """

    def __init__(self, message: str, pointer: str = "", *, source: str | None = None) -> None:
        self.pointer = pointer
        self.detail = message
        self.source = source
        where = f" in {source}" if source else ""
        at = f" at {pointer}" if pointer else ""
        super().__init__(f"invalid stub mapping{where}{at}: {message}")


class UnsupportedTemplateHelperError(StubError):
    """A response template uses a Handlebars helper testbed does not implement."""


class VerificationError(StubError, AssertionError):
    """``verify`` found a different number of matching requests than expected."""


class UnmatchedRequestsError(StubError, AssertionError):
    """The test made requests that matched no stub."""
