"""pytest hooks of the per-test transcript (registered by ``testbed.plugin`` as one of its parts).

Where tests run (the only process, or each xdist worker): record every test's boundary events from its
setup to its teardown, put the compact transcript under a failure, apply query budgets and the N+1
detector, and hand the transcript on with the teardown report. Where reports are shown (the only process,
or the xdist controller): fold a teardown error that is the test's own failure into that test, write the
JUnit additions, the GitHub Actions annotations and the HTML report.

Cheap to load: the recorder and renderers are imported when the first test runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from testbed.report.transcript import Recorder, Transcript

SECTION = "testbed transcript"
FOLDED = "testbed: also at teardown"


def pytest_configure(config: pytest.Config) -> None:
    from testbed.plugin.session import capture_enabled

    try:
        capture = capture_enabled(config)
    except Exception:
        return  # the configuration error is reported where settings are validated
    config.pluginmanager.register(TranscriptHooks(config, capture), "testbed-report")


@pytest.fixture
def queries(request: pytest.FixtureRequest) -> Generator[Any, None, None]:
    """The statements run on the test's databases since this fixture started, by any connection (the
    application's pools and other processes included), read from the server's log: ``len(queries)``,
    ``queries.statements`` (each with ``sql``, ``shape``, ``duration_ms``, ``application_name``, ``error``),
    ``queries.shapes`` (a Counter), ``queries.repeated(n)``, ``queries.reset()``."""
    from testbed.report.queries import QueryLog

    log = QueryLog()
    yield log
    log.close()


def _is_own_failure(excinfo: Any) -> bool:
    """A teardown error that is really the test's failure: what it left behind, or requests no stub matched."""
    if excinfo is None:
        return False
    from testbed.errors import LeakError

    if excinfo.errisinstance(LeakError):
        return True
    text = str(excinfo.value)
    return excinfo.typename == "Failed" and text.startswith(("[HTTP stub]", "LeakError:", "[postgres leak",
                                                             "[mysql leak", "[mariadb leak"))


class TranscriptHooks:
    """The hooks, registered once per process when the plugin loads."""

    def __init__(self, config: pytest.Config, capture: bool) -> None:
        self.config = config
        self.capture = capture
        self.html_path: str | None = config.getoption("--testbed-report", default=None)
        self.junit = bool(getattr(config.option, "xmlpath", None))
        self.is_worker = hasattr(config, "workerinput")
        self.recorder: Recorder | None = None
        self.failed: set[str] = set()
        # Where reports are shown:
        self.tests: dict[str, dict[str, Any]] = {}
        self.call_reports: dict[str, pytest.TestReport] = {}
        self.annotations: list[str] = []
        self.report_size = 0

    # -- where tests run ------------------------------------------------------------------------------
    def _boundaries_in_play(self, item: pytest.Item) -> bool:
        """Whether this test can cross a boundary testbed sees: a server is up in this process, a stub server
        was made, or the test asks for one of testbed's fixtures. A unit test in a run that uses no service
        pays nothing for transcripts (not even their import)."""
        import sys

        from testbed.plugin.session import has_endpoints

        if has_endpoints(self.config) or "testbed.stubs.server" in sys.modules:
            return True
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            return True
        for definitions in info.name2fixturedefs.values():
            for definition in definitions:
                if getattr(getattr(definition, "func", None), "__module__", "testbed").startswith("testbed"):
                    return True
        return False

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, None, None]:
        if not self.capture or not self._boundaries_in_play(item):
            yield
            return
        if self.recorder is None:
            from testbed.report.transcript import Recorder

            self.recorder = Recorder()
            self.config.add_cleanup(self.recorder.close)
        from testbed.report import queries

        queries.forget_call_sites()
        queries.install_call_sites()
        self.recorder.start(item.nodeid)
        try:
            yield
        finally:
            self.recorder.stop()

    def _budgets(self, item: pytest.Item) -> tuple[int | None, int]:
        from testbed.plugin.options import marker_options
        from testbed.plugin.session import top_level

        options = marker_options(item)
        threshold = options.n_plus_one if options.n_plus_one is not None else top_level(self.config, "n_plus_one", 0)
        return options.max_queries, int(threshold or 0)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        transcript = self.recorder.current if self.recorder is not None else None
        if transcript is None:
            return
        from testbed import observe

        if call.when == "call":
            max_queries, n_plus_one = self._budgets(item)
            if report.failed or max_queries is not None or n_plus_one:
                observe.flush()
            # After the flush: a log timed to the second (MariaDB's) is timed when read, still in this phase.
            transcript.phase_ends["call"] = max(call.stop, time.time())
            if report.passed and (max_queries is not None or n_plus_one):
                self._check_budgets(report, transcript, max_queries, n_plus_one)
        elif call.when == "setup":
            if report.failed:
                observe.flush()
            transcript.phase_ends["setup"] = max(call.stop, time.time())
        elif call.when == "teardown":
            transcript.phase_ends["teardown"] = call.stop
            # Everything up to now when someone reads this test's transcript (a failure, the HTML report,
            # JUnit); otherwise only what the logs hold already, without waiting for them.
            observe.flush(wait=report.failed or item.nodeid in self.failed or bool(self.html_path or self.junit))
            if report.failed and _is_own_failure(call.excinfo):
                report.testbed_own_failure = True  # type: ignore[attr-defined]
        if report.failed:
            self.failed.add(item.nodeid)
            from testbed.report.transcript import failure_section

            section = failure_section(transcript)
            if section:
                report.sections.append((SECTION, section))
        if call.when == "teardown":
            self._hand_on(report, transcript, item.nodeid in self.failed)
            self.failed.discard(item.nodeid)

    def _check_budgets(self, report: pytest.TestReport, transcript: Transcript, max_queries: int | None,
                       n_plus_one: int) -> None:
        from testbed.report.queries import Query, budget_message, call_sites, n_plus_one_message
        from testbed.report.shapes import is_query, repeats

        found = [q for q in (Query.from_event(e) for e in transcript.statements("call")) if is_query(q.shape)]
        problems = []
        if max_queries is not None and len(found) > max_queries:
            problems.append(budget_message(found, max_queries, "the test") +
                            f"\n(@pytest.mark.testbed(max_queries={max_queries}))")
        if n_plus_one:
            repeated = repeats((q.shape for q in found), n_plus_one, call_sites())
            if repeated:
                problems.append(n_plus_one_message(repeated, n_plus_one))
        if problems:
            report.outcome = "failed"
            report.longrepr = "[sql] QueryBudgetError: " + "\n\n".join(problems)

    def _hand_on(self, report: pytest.TestReport, transcript: Transcript, failed: bool) -> None:
        """What the reporting process needs, as plain data on the teardown report (crosses xdist)."""
        if self.html_path:
            report.testbed_transcript = transcript.to_json()  # type: ignore[attr-defined]
        if self.junit:
            report.testbed_counts = transcript.counts()  # type: ignore[attr-defined]
            if failed:
                from testbed.report.transcript import full_text

                report.testbed_full = full_text(transcript)  # type: ignore[attr-defined]

    # -- where reports are shown ----------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(self, report: pytest.TestReport, config: pytest.Config) -> Any:
        if getattr(report, "testbed_own_failure", False) and report.when == "teardown" and report.failed:
            return "failed", "F", "FAILED"  # the test's failure, not an error of the test setup
        return None

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.is_worker:
            return
        entry = self.tests.setdefault(report.nodeid, {"nodeid": report.nodeid, "outcome": "passed",
                                                      "location": report.location})
        entry[f"{report.when}_ms"] = round(report.duration * 1000, 2)
        if report.when == "call":
            self.call_reports[report.nodeid] = report
        if report.failed or report.skipped:
            entry["outcome"] = self._outcome(report)
            entry.setdefault("error", _short_error(report))
        if report.failed:
            crash = getattr(getattr(report.longrepr, "reprcrash", None), "message", "")
            entry.setdefault("crash", crash or (report.longreprtext or "").strip().splitlines()[-1:] or [""])
            entry.setdefault("section", next((text for name, text in report.sections if name == SECTION), ""))
        if hasattr(report, "wasxfail"):
            entry["outcome"] = "xfailed" if report.skipped else "xpassed"
        if report.when == "teardown":
            self._teardown(report, entry)

    @staticmethod
    def _outcome(report: pytest.TestReport) -> str:
        if report.skipped:
            return "skipped"
        if report.when == "call" or getattr(report, "testbed_own_failure", False):
            return "failed"
        return "error"

    def _teardown(self, report: pytest.TestReport, entry: dict[str, Any]) -> None:
        call = self.call_reports.pop(report.nodeid, None)
        if getattr(report, "testbed_own_failure", False) and report.failed and call is not None and call.failed:
            # One failure, not "1 failed, 1 error": the teardown's finding goes with the test's failure.
            call.sections.append((FOLDED, report.longreprtext))
            call.sections.extend((f"{name} (at teardown)", text) for name, text in report.sections
                                 if name not in (SECTION,) and not name.startswith("Captured"))
            report.outcome = "passed"
            entry["outcome"] = "failed"
            entry["error"] = entry.get("error", "") + "\n\nalso at teardown:\n" + report.longreprtext[-3000:]
        elif getattr(report, "testbed_own_failure", False) and report.failed and call is not None and call.passed:
            # Counted once, as a failure (pytest_report_teststatus), not as "1 passed, 1 error".
            terminal = self.config.pluginmanager.get_plugin("terminalreporter")
            passed = terminal.stats.get("passed", []) if terminal is not None else []
            if call in passed:
                passed.remove(call)
        self._junit(report)
        transcript = getattr(report, "testbed_transcript", None)
        if transcript:
            entry["events"] = transcript.get("events", [])
            entry["service_start_ms"] = transcript.get("service_start_ms", 0)
            entry["dropped"] = transcript.get("dropped", 0)
        if entry["outcome"] in ("failed", "error") and os.environ.get("GITHUB_ACTIONS") == "true":
            from testbed.report.github import annotation

            self.annotations.append(annotation(entry))

    def _junit(self, report: pytest.TestReport) -> None:
        if not self.junit:
            return
        try:
            from _pytest.junitxml import xml_key
        except ImportError:
            return
        xml = self.config.stash.get(xml_key, None)
        if xml is None:
            return
        from testbed.report.junit import add_to_testcase

        add_to_testcase(xml, report)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.is_worker or not self.html_path:
            return
        from testbed.report import html

        tests = [t for t in self.tests.values() if any(k in t for k in ("call_ms", "setup_ms"))]
        self.report_size = html.write(Path(self.html_path), tests, title=str(self.config.rootpath))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker:
            return
        for line in self.annotations:
            terminalreporter.write_line(line)
        if self.html_path and self.report_size:
            terminalreporter.write_line(
                f"testbed report: {self.html_path} ({len(self.tests)} tests, {self.report_size / 1024:.0f} KiB)"
                + ("" if self.capture else "; capture is off: durations only"))


def _short_error(report: pytest.TestReport) -> str:
    text = report.longreprtext or ""
    return text[-4000:]

