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


class TemplateLimitError(StubError):
    """A response template went over one of the bounds that keep a runaway template from eating the host."""


class VerificationError(StubError, AssertionError):
    """``verify`` found a different number of matching requests than expected."""


class UnmatchedRequestsError(StubError, AssertionError):
    """The test made requests that matched no stub."""


def check_known_keys(obj: dict[str, object], known: frozenset[str], pointer: str, what: str) -> None:
    """Refuse a key WireMock would not accept (a typo such as ``respnse``), suggesting the closest one.

    WireMock answers such a mapping with a 422 naming the field; silently ignoring it would serve an
    empty 200 and leave the user wondering why their response never shows up.
    """
    unknown = [k for k in obj if k not in known]
    if not unknown:
        return
    import difflib
    import json

    key = unknown[0]
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    hint = f" Did you mean {json.dumps(close[0])}?" if close else f" Valid keys: {', '.join(sorted(known))}."
    raise InvalidStubError(f"unknown key {json.dumps(key)} in the {what}.{hint}", f"{pointer}/{key}")
