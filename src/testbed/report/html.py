"""``--testbed-report=PATH.html``: one self-contained HTML file (no network) with every test of the run.

Per test: its outcome, setup/call/teardown durations (the start of services billed separately, not to the
test that happened to start them), the error, and a timeline of its boundary events (SQL, HTTP, messages,
server log lines). Filterable by outcome, by boundary and by text. The data sits in the page as JSON and
each test's timeline is drawn only when it is opened, so a thousand tests open at once.
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path
from typing import Any

_ASSETS = Path(__file__).parent


def _asset(name: str) -> str:
    return (_ASSETS / name).read_text(encoding="utf-8")


def render(tests: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The whole page for ``tests`` (each: nodeid, outcome, *_ms, service_start_ms, error, events)."""
    totals: dict[str, int] = {}
    for t in tests:
        totals[t["outcome"]] = totals.get(t["outcome"], 0) + 1
    service_ms = sum(float(t.get("service_start_ms") or 0) for t in tests)
    test_ms = sum(float(t.get(k) or 0) for t in tests for k in ("setup_ms", "call_ms", "teardown_ms")) - service_ms
    payload = json.dumps({"tests": tests, "meta": meta}, separators=(",", ":"), default=str)
    payload = payload.replace("</", "<\\/").replace("<!--", "<\\!--")
    summary = " ".join(f"<span class={html.escape(k)}>{n} {html.escape(k)}</span>" for k, n in sorted(totals.items()))
    return (
        "<!DOCTYPE html><html><head><meta charset=utf-8>"
        f"<title>testbed report: {html.escape(str(meta.get('title', '')))}</title>"
        f"<style>{_asset('report.css')}</style></head><body>"
        f"<header><h1>testbed report</h1><div class=totals>{summary}"
        f"<span>tests {test_ms / 1000:.2f} s</span><span>service start {service_ms / 1000:.2f} s</span>"
        f"<span>{html.escape(str(meta.get('when', '')))}</span></div></header>"
        "<div id=filters>outcome: <span id=f-outcome></span> boundary: <span id=f-boundary></span> "
        "<input id=f-text type=search placeholder='filter by test name or error'></div>"
        "<table><thead><tr><th>outcome</th><th>test</th><th>setup</th><th>call</th><th>teardown</th>"
        "<th>service start</th><th>boundary events</th></tr></thead><tbody id=rows></tbody></table>"
        f"<script id=testbed-data type=application/json>{payload}</script>"
        f"<script>{_asset('report.js')}</script></body></html>"
    )


def write(path: Path, tests: list[dict[str, Any]], title: str = "") -> int:
    """Write the report; returns its size in bytes."""
    text = render(tests, {"title": title, "when": time.strftime("%Y-%m-%d %H:%M:%S")})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return len(text.encode())
