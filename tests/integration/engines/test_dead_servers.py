"""A server that died mid-run fails the next test that needs it with its name and log tail, for every engine."""

from __future__ import annotations

import pytest

KILL_THEN_USE = """
import os, signal, time

def test_1_kills_it(testbed_{engine}_server):
    os.kill(testbed_{engine}_server.pid, signal.SIGKILL)
    while testbed_{engine}_server.alive():
        time.sleep(0.01)

def test_2_needs_it({fixture}):
    pass
"""


@pytest.mark.parametrize(("engine", "fixture", "label"),
                         [("nats", "nats_url", "NATS"), ("redis", "redis_url", "Redis")])
def test_the_next_test_names_the_dead_server(pytester: pytest.Pytester, engine: str, fixture: str,
                                             label: str) -> None:
    pytester.makepyfile(KILL_THEN_USE.format(engine=engine, fixture=fixture))
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [f"*ServerDiedError: [[]{engine}] {label} (pid *, port *) is no longer running*Its last log lines*"])
    assert "ConnectionRefusedError" not in result.stdout.str()
