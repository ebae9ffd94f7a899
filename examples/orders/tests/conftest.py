"""The orders suite's fixtures: the real app on a real socket, wired to testbed's services."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from orders.app import Settings, create_app
from orders.server import RunningServer

from testbed.events.names import scoped_name


@pytest.fixture
def order_subject(request: pytest.FixtureRequest) -> str:
    """A NATS subject of this test's own, so parallel workers and earlier tests never share messages."""
    worker = getattr(request.config, "workerinput", {}).get("workerid")
    return scoped_name("orders.created", worker=worker, nodeid=request.node.nodeid)


@pytest.fixture
def order_created(events, order_subject):  # type: ignore[no-untyped-def]
    """Listening on the broker before the action: nothing the app publishes is missed."""
    return events.listen(order_subject)


@pytest.fixture(scope="session")
def orders_service(postgres, testbed_http_stub_server, testbed_nats_server) -> Iterator[tuple[FastAPI, str]]:  # type: ignore[no-untyped-def]
    """The orders service, served by uvicorn on a free loopback port for the whole session (per worker).

    It talks to this worker's database (cleaned per test by truncate isolation), the session's payment
    stub (reset per test by ``http_stub``) and the session's NATS server (a subject per test).
    """
    settings = Settings(database_url=postgres.url, payment_url=testbed_http_stub_server.url,
                        nats_url=str(testbed_nats_server.url), payment_timeout=0.5, payment_attempts=3,
                        pool_size=3, pool_timeout=1.0)
    app = create_app(settings)
    server = RunningServer(app)
    yield app, server.url
    server.stop()
    app.state.close()


@pytest.fixture
def orders_api(orders_service: tuple[FastAPI, str], db_url: str, http_stub, order_subject: str) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The service's URL for one test: its events go to the test's own subject."""
    app, url = orders_service
    app.state.order_created_subject = order_subject
    yield url
    # The pool's connections were opened by this test: close them, or testbed's leak check fails it.
    app.state.engine.dispose()


@pytest.fixture
def client(orders_api: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=orders_api, timeout=10) as c:
        yield c


BOUNDARIES = {"test_repository.py": "repository", "test_payment_client.py": "HTTP client",
              "test_http_api.py": "HTTP API", "test_events.py": "events"}


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    """Per-boundary counts, for `make demo`'s summary."""
    counts: dict[str, dict[str, int]] = {}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            if getattr(report, "when", "call") not in ("call", "setup") or not hasattr(report, "nodeid"):
                continue
            if outcome == "passed" and report.when != "call":
                continue
            name = BOUNDARIES.get(report.nodeid.split("::")[0].rsplit("/", 1)[-1], "other")
            counts.setdefault(name, {}).setdefault(outcome, 0)
            counts[name][outcome] += 1
    if counts:
        terminalreporter.section("tests per boundary")
        for name, by in sorted(counts.items()):
            terminalreporter.write_line(f"{name}: " + ", ".join(f"{n} {o}" for o, n in by.items()))
        terminalreporter.write_line(f"random order: {SEED_VAR}={os.environ.get(SEED_VAR)} replays it")


SEED_VAR = "ORDERS_TEST_SEED"


def pytest_configure(config):  # type: ignore[no-untyped-def]
    # Random order, same for every xdist worker (they inherit the env var set here, in the controller).
    if not hasattr(config, "workerinput"):
        os.environ.setdefault(SEED_VAR, str(random.randrange(1 << 30)))


def pytest_collection_modifyitems(session, config, items):  # type: ignore[no-untyped-def]
    random.Random(int(os.environ[SEED_VAR])).shuffle(items)


def pytest_report_header(config):  # type: ignore[no-untyped-def]
    return f"orders suite in random order: {SEED_VAR}={os.environ[SEED_VAR]} replays it"
