"""Fault reports: when a test runs out of pool connections, the report says which ones were held and where.

A process-wide :class:`~testbed.isolation.pool_pressure.PoolWatcher` follows every SQLAlchemy pool once
SQLAlchemy is imported (``--testbed-no-pool-watch`` turns it off). A test that fails with a pool timeout, from
any pool, or with the server's connection limit, gets a "testbed pool pressure" section: the connections the
SQLAlchemy pools held at the moment of the timeout (state, last statement, how long, the stack that checked
each out) and PostgreSQL's view of the test's database. A test that fails the leak check gets the checkout
stacks of the leaked connections. ``testbed_pool_pressure`` gives the same report on demand.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from testbed.isolation.pool_pressure import HeldConnection, PoolPressureReport, PoolWatcher

SECTION = "testbed pool pressure"
_watcher_key = pytest.StashKey["PoolWatcher"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("testbed", "testbed: real services for integration tests")
    group.addoption(
        "--testbed-no-pool-watch",
        action="store_true",
        default=False,
        help="do not follow SQLAlchemy pools (no checkout stacks in pool-timeout and leak reports)",
    )


def _watcher(config: pytest.Config, *, start: bool = False) -> PoolWatcher | None:
    """The run's pool watcher; started once SQLAlchemy is imported (never imports it for a suite without it)."""
    watcher = config.stash.get(_watcher_key, None)
    if watcher is None and (start or "sqlalchemy" in sys.modules) and not config.getoption("testbed_no_pool_watch"):
        from testbed.isolation.pool_pressure import PoolWatcher

        watcher = config.stash[_watcher_key] = PoolWatcher(annotate=False).start()
    return watcher


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    watcher = _watcher(item.config)
    if watcher is not None:
        watcher.timeouts.clear()  # this test's timeouts only


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    _watcher(item.config)  # SQLAlchemy first imported by the test itself: watch from here on


def _test_url(item: pytest.Item) -> str | None:
    funcargs = getattr(item, "funcargs", {})
    ctx = funcargs.get("testbed_isolation")
    return str(ctx.url) if ctx is not None and getattr(ctx, "url", None) else None


def _section(item: pytest.Item, call: pytest.CallInfo[None], when: str) -> str | None:
    from testbed.isolation.pool_pressure import PoolPressureReport, pool_exhaustion, server_view

    watcher = _watcher(item.config)
    if watcher is not None and watcher.timeouts:
        first, more = watcher.timeouts[0], len(watcher.timeouts) - 1
        watcher.timeouts.clear()
        return first.text() + (f"\n(and {more} more pool timeout(s) in this test)" if more else "")
    error = call.excinfo.value if call.excinfo is not None else None
    reason = pool_exhaustion(error)
    if reason is not None:  # another pool (psycopg_pool, asyncpg) or the server's limit: the server's view now
        url = _test_url(item)
        if watcher is not None:
            return watcher.snapshot(f"{reason} (seen when the test failed)", url=url).text()
        if url is None:
            return None
        try:
            database, sessions = server_view(url)
        except Exception as exc:
            return PoolPressureReport(reason, server_error=f"{type(exc).__name__}: {exc}").text()
        return PoolPressureReport(reason, server=sessions, database=database).text()
    from testbed.errors import LeakError

    if when == "teardown" and watcher is not None and isinstance(error, LeakError):
        pids = {int(p) for p in re.findall(r"backend pid (\d+)", str(error))}
        leaked = [h for h in watcher.held() if h.backend_pid in pids]
        watcher.forget(pids)  # the leak check terminated them: later tests must not see them as held
        if leaked:
            return ("The leaked connection(s) came from a SQLAlchemy pool and were never checked back in:\n"
                    + "\n".join(h.describe() for h in leaked))
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    if report.failed:
        try:
            section = _section(item, call, report.when)
        except Exception as exc:  # a report about the failure must never replace it
            section = f"(testbed could not build the pool pressure report: {type(exc).__name__}: {exc})"
        if section:
            report.sections.append((SECTION, section))
    return report


def pytest_unconfigure(config: pytest.Config) -> None:
    watcher = config.stash.get(_watcher_key, None)
    if watcher is not None:
        watcher.stop()


@dataclass
class PoolPressure:
    """What ``testbed_pool_pressure`` gives: the process's pool watcher and the test's database URL."""

    watcher: PoolWatcher
    url: str | None

    def held(self) -> list[HeldConnection]:
        """Connections checked out of SQLAlchemy pools now, longest held first."""
        return self.watcher.held()

    def report(self, url: str | None = None) -> PoolPressureReport:
        """The pools' checked-out connections and PostgreSQL's view of ``url`` (default: the test's database)."""
        return self.watcher.snapshot(url=url or self.url)


@pytest.fixture
def testbed_pool_pressure(request: pytest.FixtureRequest) -> PoolPressure:
    """On demand: which connections SQLAlchemy pools hold (since when, doing what, checked out where) and
    PostgreSQL's view of the test's database: ``testbed_pool_pressure.report()``."""
    watcher = _watcher(request.config, start=True)
    if watcher is None:
        pytest.fail("testbed_pool_pressure needs the pool watcher, which --testbed-no-pool-watch turned off.",
                    pytrace=False)
    url = None
    if "testbed_isolation" in request.fixturenames:
        url = str(request.getfixturevalue("testbed_isolation").url)
    return PoolPressure(watcher, url)
