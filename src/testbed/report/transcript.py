"""The per-test transcript: what crossed each boundary while one test ran, on one clock.

A :class:`Recorder` listens to ``testbed.observe`` from the start of a test's setup to the end of its
teardown. :func:`failure_section` renders the compact section pytest prints under a failure, most relevant
first: the SQL error, the last statements, unmatched or failed HTTP exchanges, leaks and pool timeouts,
messages, what the test wrote, server log lines. :func:`full_text` is the whole transcript (JUnit), and
:meth:`Transcript.to_json` what the HTML report shows.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from testbed import observe
from testbed.report.shapes import is_query, shape

MAX_EVENTS = 2000  # per test; beyond that the oldest non-error events are dropped (the count is kept)
SECTION_LINES = 40  # the terminal section's length cap
LINE = 220  # characters of one line in the terminal section


@dataclass
class Transcript:
    """One test's boundary events and timings (JSON-able through :meth:`to_json`)."""

    nodeid: str
    started: float
    events: list[observe.BoundaryEvent] = field(default_factory=list)
    dropped: int = 0
    phase_ends: dict[str, float] = field(default_factory=dict)  # "setup"/"call"/"teardown" -> wall clock

    def add(self, event: observe.BoundaryEvent) -> None:
        self.events.append(event)
        if len(self.events) > MAX_EVENTS:
            for i, old in enumerate(self.events):
                if not _is_problem(old):
                    del self.events[i]
                    self.dropped += 1
                    break
            else:
                del self.events[0]
                self.dropped += 1

    def sorted_events(self) -> list[observe.BoundaryEvent]:
        return sorted(self.events, key=lambda e: e.at)

    def phase_of(self, at: float) -> str:
        for phase in ("setup", "call", "teardown"):
            end = self.phase_ends.get(phase)
            if end is None or at <= end:
                return phase
        return "teardown"

    def statements(self, phase: str | None = None) -> list[observe.BoundaryEvent]:
        found = [e for e in self.sorted_events() if e.boundary == "sql" and e.kind == "statement"]
        if phase is not None:
            found = [e for e in found if self.phase_of(e.at) == phase]
        return found

    def counts(self) -> dict[str, int]:
        """Events per boundary, and "problems" (errors, unmatched requests, leaks) when there were any."""
        found: dict[str, int] = {}
        for e in self.events:
            found[e.boundary] = found.get(e.boundary, 0) + 1
        problems = sum(1 for e in self.events if _is_problem(e))
        if problems:
            found["problems"] = problems
        return found

    def service_start_ms(self) -> float:
        return sum(float(e.data.get("ms") or 0) for e in self.events if e.boundary == "services")

    def to_json(self, max_events: int = 300, max_text: int = 1500) -> dict[str, Any]:
        """The transcript as plain data (for the xdist hand-off and the HTML report), capped."""
        events = self.sorted_events()
        kept = events if len(events) <= max_events else _cap(events, max_events)
        return {
            "nodeid": self.nodeid, "started": self.started, "dropped": self.dropped + len(events) - len(kept),
            "service_start_ms": round(self.service_start_ms(), 1),
            "events": [_event_json(e, self.started, self.phase_of(e.at), max_text) for e in kept],
        }


def _cap(events: list[observe.BoundaryEvent], limit: int) -> list[observe.BoundaryEvent]:
    problems = [e for e in events if _is_problem(e)][-limit // 2:]
    rest = [e for e in events if not _is_problem(e)][-(limit - len(problems)):]
    return sorted(problems + rest, key=lambda e: e.at)


def _event_json(e: observe.BoundaryEvent, started: float, phase: str, max_text: int) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for k, v in e.data.items():
        if isinstance(v, str):
            data[k] = v[:max_text]
        elif isinstance(v, int | float | bool) or v is None:
            data[k] = v
        elif isinstance(v, dict):
            data[k] = {str(a): str(b)[:200] for a, b in list(v.items())[:30]}
        else:
            data[k] = str(v)[:max_text]
    return {"t": round((e.at - started) * 1000, 2), "boundary": e.boundary, "kind": e.kind, "phase": phase,
            "summary": e.summary[:400], "problem": _is_problem(e), "data": data}


def _is_problem(e: observe.BoundaryEvent) -> bool:
    d = e.data
    if e.boundary == "sql":
        return bool(d.get("error")) or e.kind in ("leak", "pool timeout")
    if e.boundary == "http":
        status = d.get("status")
        return e.kind == "unmatched" or bool(d.get("fault")) or bool(d.get("error")) or (
            isinstance(status, int) and status >= 500)
    if e.boundary == "server log":
        return str(d.get("severity", "")).upper() in ("ERROR", "FATAL", "PANIC")
    return e.kind in ("leak", "error", "timeout")


class Recorder:
    """Collects the events of the running test (any thread may publish)."""

    def __init__(self) -> None:
        self.current: Transcript | None = None
        self._lock = threading.Lock()
        self._unsubscribe: Any = None

    def start(self, nodeid: str) -> Transcript:
        with self._lock:
            self.current = Transcript(nodeid, time.time())
        if self._unsubscribe is None:
            self._unsubscribe = observe.subscribe(self._on_event)
        return self.current

    def _on_event(self, event: observe.BoundaryEvent) -> None:
        with self._lock:
            if self.current is not None and event.at >= self.current.started - 0.002:
                self.current.add(event)

    def stop(self) -> Transcript | None:
        with self._lock:
            done, self.current = self.current, None
        return done

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None


# -- rendering ----------------------------------------------------------------------------------------


def _clip(text: str, width: int = LINE) -> str:
    one = " ".join(text.split())
    return one if len(one) <= width else one[: width - 3] + "..."


def _when(t: Transcript, e: observe.BoundaryEvent) -> str:
    return f"+{(e.at - t.started) * 1000:7.1f}ms"


def _statement_line(t: Transcript, e: observe.BoundaryEvent) -> str:
    d = e.data
    took = f" ({float(d['duration_ms']):.2f} ms)" if d.get("duration_ms") is not None else ""
    who = _who(d)
    text = _clip(str(d.get("sql_shown") or e.summary.split("  -> ERROR")[0]), LINE - 40)
    line = f"{_when(t, e)} {text}{took}{who}"
    if d.get("error"):
        line += f"\n             -> ERROR {_clip(str(d['error']), LINE - 30)}"
        if d.get("detail"):
            line += f"\n                {_clip(str(d['detail']), LINE - 30)}"
    return line


def _who(d: Any) -> str:
    """Which connection: testbed's (the db fixture's), else the application's by name and backend pid."""
    if d.get("connection"):
        return f" [{d['connection']}]"
    app = str(d.get("application_name") or "")
    pid = (f"pid {d['pid']}" if d.get("engine") == "postgres" else f"connection {d['pid']}") if d.get("pid") else ""
    if app.startswith("testbed:"):
        app = "opened by the test"
    return f" [{', '.join(p for p in (app, pid) if p)}]" if app or pid else ""


def _http_line(t: Transcript, e: observe.BoundaryEvent, bodies: bool) -> str:
    d = e.data
    line = f"{_when(t, e)} {_clip(e.summary, LINE - 20)}"
    extras = []
    if d.get("delay_ms"):
        extras.append(f"delayed {d['delay_ms']} ms")
    if d.get("error"):
        extras.append(f"error: {_clip(str(d['error']), 120)}")
    if extras:
        line += " [" + "; ".join(extras) + "]"
    if bodies:
        if d.get("request_body"):
            line += f"\n             request:  {_clip(str(d['request_body']), LINE - 30)}"
        if d.get("response_body") and e.kind != "unmatched":
            line += f"\n             response: {_clip(str(d['response_body']), LINE - 30)}"
    return line


def failure_section(t: Transcript, n_plus_one_hint: int = 10) -> str:
    """The compact transcript under a failure: most relevant first, capped at SECTION_LINES lines."""
    events = t.sorted_events()
    blocks: list[tuple[str, list[str]]] = []
    statements = [e for e in events if e.boundary == "sql" and e.kind == "statement"]
    errors = [e for e in statements if e.data.get("error")]
    if errors:
        blocks.append(("SQL errors", [_statement_line(t, e) for e in errors[-3:]]))
    http = [e for e in events if e.boundary == "http"]
    bad_http = [e for e in http if _is_problem(e)]
    if bad_http:
        blocks.append(("HTTP stub: unmatched or failed", [_http_line(t, e, True) for e in bad_http[-4:]]))
    problems = [e for e in events if e.boundary in ("sql", "events", "isolation") and _is_problem(e)
                and e.kind != "statement"]
    if problems:
        blocks.append(("leaks and timeouts", [f"{_when(t, e)} {_clip(e.summary)}" for e in problems[-3:]]))
    counted = [e for e in statements if is_query(shape(str(e.data.get("sql", ""))))]
    if statements:
        # Without the drivers' session noise (SET, SHOW, BEGIN); COMMIT and ROLLBACK stay: where a transaction
        # ended is often the finding.
        noise = ("set ", "show ", "begin", "start transaction", "deallocate", "discard", "release savepoint")
        shown = [e for e in statements if e not in errors
                 and not shape(str(e.data.get("sql", ""))).startswith(noise)][-8:]
        title = f"last statements ({len(counted)} on the test's databases, any connection)"
        blocks.append((title, [_statement_line(t, e) for e in shown]))
        top = Counter(shape(str(e.data.get("sql", ""))) for e in counted).most_common(1)
        if top and top[0][1] > n_plus_one_hint:
            blocks.append(("repeated statement (N+1?)", [f"{top[0][1]}x {_clip(top[0][0])}"]))
    good_http = [e for e in http if not _is_problem(e)]
    if good_http:
        blocks.append((f"HTTP exchanges ({len(http)})", [_http_line(t, e, len(good_http) <= 2)
                                                         for e in good_http[-4:]]))
    messages = [e for e in events if e.boundary == "events"]
    if messages:
        blocks.append((f"messages ({len(messages)})", [f"{_when(t, e)} {e.kind}: {_clip(e.summary)}"
                                                        for e in messages[-4:]]))
    written = [e for e in events if e.boundary == "sql" and e.kind == "written"]
    if written:
        blocks.append(("written", [_clip(e.summary) for e in written[-2:]]))
    logs = [e for e in events if e.boundary == "server log"]
    if logs:
        blocks.append(("server log", [f"{_when(t, e)} {_clip(e.summary)}" for e in logs[-4:]]))
    out: list[str] = []
    for title, lines in blocks:
        if len(out) >= SECTION_LINES:
            out.append("... (more in the JUnit XML / --testbed-report)")
            break
        out.append(f"{title}:")
        for line in lines:
            out += ["  " + part for part in line.split("\n")]
    if not out:
        return ""
    return "\n".join(out[: SECTION_LINES + 1])


def full_text(t: Transcript) -> str:
    """Every event of the transcript, one (or a few) lines each, in time order."""
    lines = [f"testbed transcript of {t.nodeid} ({len(t.events)} events"
             + (f", {t.dropped} older ones dropped" if t.dropped else "") + ")"]
    for e in t.sorted_events():
        phase = t.phase_of(e.at)
        if e.boundary == "sql" and e.kind == "statement":
            body = _statement_line(t, e)
        elif e.boundary == "http":
            body = _http_line(t, e, True)
        else:
            body = f"{_when(t, e)} {_clip(e.summary, 1000)}"
        lines.append(f"[{phase:8}] [{e.boundary}] {body}")
    return "\n".join(lines)
