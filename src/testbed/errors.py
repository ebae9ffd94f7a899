"""Errors testbed raises: each names the boundary that broke, what was expected, and the fix."""

from __future__ import annotations


class TestbedError(Exception):
    """Base class of every error testbed raises on purpose.

    ``boundary`` names the part of the system that failed (config, PostgreSQL, HTTP stub, broker...),
    so a failure report can say where to look before the reader opens the traceback.
    """

    __test__ = False  # not a pytest test class despite the name
    boundary = "testbed"

    def __init__(self, message: str, *, boundary: str | None = None) -> None:
        if boundary is not None:
            self.boundary = boundary
        super().__init__(message)

    def __str__(self) -> str:
        return f"[{self.boundary}] {super().__str__()}"


class ConfigError(TestbedError):
    """The [tool.testbed] table, an env var or a marker argument is invalid."""

    boundary = "config"


class BinaryNotFoundError(TestbedError):
    """No server binary was found in any of the places testbed looks."""


class VersionMismatchError(TestbedError):
    """A binary was found, but not of the pinned major version."""


class ServerStartError(TestbedError):
    """A server process did not become ready; the message carries its last log lines."""


class ServerDiedError(TestbedError):
    """A server that was running has exited; the message carries its last log lines."""


class MigrationError(TestbedError):
    """Applying migrations to the template database failed."""


class IsolationError(TestbedError):
    """Per-test isolation could not be set up or undone."""


class GuardError(TestbedError):
    """testbed refused to truncate, drop or clone a database it did not create."""


class LeakError(TestbedError):
    """A test left something behind: open connections, committed rows."""


def to_wire(exc: TestbedError) -> dict[str, str]:
    """An error as plain data (for the xdist hand-off): its class name, boundary and message."""
    return {"type": type(exc).__name__, "boundary": exc.boundary, "message": str(exc.args[0]) if exc.args else ""}


def from_wire(data: dict[str, str]) -> TestbedError:
    """The error ``to_wire`` described, as the same class where testbed defines it (else a TestbedError)."""
    cls = globals().get(data.get("type", ""), TestbedError)
    if not (isinstance(cls, type) and issubclass(cls, TestbedError)):
        cls = TestbedError
    return cls(data.get("message", ""), boundary=data.get("boundary") or None)
