"""Command-line options, the one ``testbed`` marker and its validation, and SIGTERM handling."""

from __future__ import annotations

import inspect
import signal
import threading
from dataclasses import dataclass
from types import FrameType
from typing import Any

import pytest

from testbed.config import ISOLATION_STRATEGIES
from testbed.errors import ConfigError


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("testbed", "testbed: real services for integration tests")
    group.addoption(
        "--testbed-isolation",
        choices=ISOLATION_STRATEGIES,
        default=None,
        help="default per-test isolation for SQL databases (overrides isolation in [tool.testbed.<engine>])",
    )
    group.addoption(
        "--testbed-reuse",
        action="store_true",
        default=None,
        dest="testbed_reuse",
        help="keep servers between runs and adopt a kept one (default: on unless CI is set; [tool.testbed] reuse)",
    )
    group.addoption(
        "--testbed-no-reuse",
        action="store_false",
        dest="testbed_reuse",
        help="start fresh servers for this run and stop them at its end",
    )
    group.addoption(
        "--testbed-no-capture",
        action="store_true",
        default=False,
        help="do not record the per-test transcript (statements, HTTP exchanges, messages, server log lines)",
    )
    group.addoption(
        "--testbed-report",
        metavar="PATH.html",
        default=None,
        help="write one self-contained HTML report: every test, its durations and its boundary events",
    )
    group.addoption(
        "--testbed-no-leak-check",
        action="store_true",
        default=False,
        help="do not fail tests that leave database connections open or rows behind",
    )


def _marker_signature(*, isolation: str | None = None, leak_check: bool | None = None, reason: str = "",
                      fail_on_unmatched: bool | None = None, max_queries: int | None = None,
                      n_plus_one: int | None = None) -> None:
    """The ``testbed`` marker's keyword arguments: binding to this signature rejects anything else."""


@dataclass(frozen=True)
class MarkerOptions:
    """What ``@pytest.mark.testbed(...)`` says for one test (None: not said, use the configured default)."""

    isolation: str | None = None
    leak_check: bool | None = None
    reason: str = ""
    fail_on_unmatched: bool | None = None
    max_queries: int | None = None  # statements the test may run on its databases (any connection)
    n_plus_one: int | None = None  # times one statement shape may repeat (0: not checked)


def marker_options(node: pytest.Item) -> MarkerOptions:
    """The closest ``testbed`` marker of ``node``, validated (unknown keywords, bad values, a missing reason)."""
    marker = node.get_closest_marker("testbed")
    if marker is None:
        return MarkerOptions()
    try:
        bound = inspect.signature(_marker_signature).bind(*marker.args, **marker.kwargs)
    except TypeError as exc:
        valid = ", ".join(inspect.signature(_marker_signature).parameters)
        raise ConfigError(f"@pytest.mark.testbed: {exc}. It takes keyword arguments: {valid}.") from None
    options = MarkerOptions(**bound.arguments)
    if options.isolation is not None and options.isolation not in ISOLATION_STRATEGIES:
        raise ConfigError(
            f"@pytest.mark.testbed(isolation={options.isolation!r}): choose one of {', '.join(ISOLATION_STRATEGIES)}."
        )
    for key in ("leak_check", "fail_on_unmatched"):
        value = getattr(options, key)
        if value is not None and not isinstance(value, bool):
            raise ConfigError(f"@pytest.mark.testbed({key}={value!r}): must be True or False.")
    for key in ("max_queries", "n_plus_one"):
        value = getattr(options, key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ConfigError(f"@pytest.mark.testbed({key}={value!r}): must be a whole number (0 or more).")
    if options.leak_check is False and not options.reason:
        raise ConfigError(
            "@pytest.mark.testbed(leak_check=False) needs reason='...' saying why this test may leave connections "
            "or rows behind."
        )
    return options


def isolation_for(request: pytest.FixtureRequest, configured: str, configured_leak_check: bool) -> tuple[str, bool]:
    """A SQL test's isolation strategy and leak check: marker, else command line, else config."""
    options = marker_options(request.node)
    strategy = options.isolation or request.config.getoption("--testbed-isolation") or configured
    leak_check = configured_leak_check and not request.config.getoption("--testbed-no-leak-check")
    if options.leak_check is not None:
        leak_check = options.leak_check
    return strategy, leak_check


def pytest_configure(config: pytest.Config) -> None:
    params = ", ".join(f"{name}={p.default!r}" for name, p in inspect.signature(_marker_signature).parameters.items())
    config.addinivalue_line("markers", f"testbed({params}): per-test testbed options")
    if not hasattr(config, "workerinput") and threading.current_thread() is threading.main_thread():
        _install_sigterm_handler(config)


def _install_sigterm_handler(config: pytest.Config) -> None:
    # Python's default SIGTERM action kills the process without running finalizers; turn it into the
    # same orderly interruption as Ctrl-C so servers are stopped and their folders removed.
    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt("SIGTERM")

    previous: Any = signal.signal(signal.SIGTERM, on_sigterm)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    config.add_cleanup(restore)
