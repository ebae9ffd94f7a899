"""One terminal summary: which real services this run started (engine, version, binary, data, cache)."""

from __future__ import annotations

from typing import Any

import pytest

from testbed.plugin.session import summary_lines


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    started = summary_lines(config)
    if not started:
        return
    terminalreporter.section("testbed services")
    for info in started:
        extra = f"; data on {info['data']}" if info.get("data") else ""
        if info.get("cache"):
            extra += f"; template cache {info['cache']}"
        terminalreporter.write_line(
            f"{info['engine']} {info['version']} from {info['binary']} ({info['source']}){extra}"
        )
