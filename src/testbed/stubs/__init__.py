"""testbed.stubs: a WireMock-compatible HTTP stub server (real sockets, faults, verification, near misses).

>>> from testbed.stubs import StubServer, get
>>> with StubServer() as server:
...     stub = server.add_mapping(get("/hello").will_return(json={"hi": 1}).to_json())
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from testbed.stubs.builder import (
        RequestPatternBuilder,
        StubBuilder,
        absent,
        any_,
        contains,
        delete,
        equal_to,
        get,
        head,
        json_path,
        matching,
        not_matching,
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

# Imported on first use (PEP 562): the standalone server's start time is mostly imports, and it needs
# neither the builder nor the pytest-facing session.
_LAZY = {
    **dict.fromkeys(
        [
            "RequestPatternBuilder",
            "StubBuilder",
            "any_",
            "delete",
            "get",
            "head",
            "options",
            "patch",
            "post",
            "put",
            "absent",
            "contains",
            "equal_to",
            "json_path",
            "matching",
            "not_matching",
        ],
        "testbed.stubs.builder",
    ),
    **dict.fromkeys(
        [
            "InvalidStubError",
            "StubError",
            "UnmatchedRequestsError",
            "UnsupportedTemplateHelperError",
            "VerificationError",
        ],
        "testbed.stubs.errors",
    ),
    "ServeEvent": "testbed.stubs.journal",
    "StubMapping": "testbed.stubs.mapping",
    "parse_mapping": "testbed.stubs.mapping",
    "Request": "testbed.stubs.request",
    "StubServer": "testbed.stubs.server",
    "HttpStub": "testbed.stubs.session",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'testbed.stubs' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
    "absent",
    "any_",
    "contains",
    "delete",
    "equal_to",
    "get",
    "head",
    "json_path",
    "matching",
    "not_matching",
    "options",
    "parse_mapping",
    "patch",
    "post",
    "put",
]
