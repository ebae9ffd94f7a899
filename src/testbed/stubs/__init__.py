"""testbed.stubs: a WireMock-compatible HTTP stub server (real sockets, faults, verification, near misses).

>>> from testbed.stubs import StubServer, get
>>> with StubServer() as server:
...     stub = server.add_mapping(get("/hello").will_return(json={"hi": 1}).to_json())
"""

from __future__ import annotations

from testbed.stubs.builder import (
    RequestPatternBuilder,
    StubBuilder,
    any_,
    delete,
    get,
    head,
    options,
    patch,
    post,
    put,
)
from testbed.stubs.errors import (
    InvalidStubError,
    StubError,
    UnmatchedRequestsError,
    UnsupportedTemplateHelperError,
    VerificationError,
)
from testbed.stubs.journal import ServeEvent
from testbed.stubs.mapping import StubMapping, parse_mapping
from testbed.stubs.request import Request
from testbed.stubs.server import StubServer
from testbed.stubs.session import HttpStub

__all__ = [
    "HttpStub",
    "InvalidStubError",
    "Request",
    "RequestPatternBuilder",
    "ServeEvent",
    "StubBuilder",
    "StubError",
    "StubMapping",
    "StubServer",
    "UnmatchedRequestsError",
    "UnsupportedTemplateHelperError",
    "VerificationError",
    "any_",
    "delete",
    "get",
    "head",
    "options",
    "parse_mapping",
    "patch",
    "post",
    "put",
]
