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
        # describe() of a third-party engine may say less than the built-in ones: print what it says
        line = " ".join(str(info[k]) for k in ("engine", "version") if info.get(k))
        if info.get("binary"):
            line += f" from {info['binary']}" + (f" ({info['source']})" if info.get("source") else "")
        elif info.get("url"):
            line += f" at {info['url']}"
        terminalreporter.write_line(line + extra)
