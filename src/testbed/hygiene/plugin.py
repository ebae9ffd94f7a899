"""pytest hooks and options of testbed's suite hygiene (its own ``pytest11`` entry point).

Thin on purpose: each concept lives in its own module of ``testbed.hygiene`` and is imported only when
its option is on (or, for the guard, when a unit-stage test is selected), so that loading the plugin
costs next to nothing in a session that uses none of it.

Under pytest-xdist the tests run, and are measured and guarded, in the workers; what ends up in the
terminal, the exit status and the durations file is decided by the controller from the reports the
workers send it (extra report attributes travel with them).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from testbed.hygiene.durations import DurationBook
    from testbed.hygiene.flaky import FlakyVerdict
    from testbed.hygiene.guard import Activation
    from testbed.hygiene.order import OrderWriter
    from testbed.hygiene.quarantine import Quarantine
    from testbed.hygiene.settings import HygieneSettings
    from testbed.hygiene.stages import Stage  # noqa: F401 (named in a stash key's type)

STAGE_CHOICES = ("all", "unit", "integration")
FLAKY_CHECK_LIMIT = 20  # failed tests checked per process; more failures mean a broken suite, not a flaky one

_state_key = pytest.StashKey["HygieneState"]()
_stage_key = pytest.StashKey["Stage"]()
_activation_key = pytest.StashKey["Activation"]()
_failed_key = pytest.StashKey[bool]()


def _shard(text: str) -> str:
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not I/N (e.g. 2/8: the second of eight shards)") from None
    if count < 1 or not 1 <= index <= count:
        raise argparse.ArgumentTypeError(f"{text!r}: I must be from 1 to N, and N at least 1")
    return text


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("testbed-hygiene", "testbed: suite hygiene (stages, order, flaky tests, durations, shards)")
    group.addoption("--testbed-stage", choices=STAGE_CHOICES, default="all",
                    help="run only the unit stage (no network, database or server processes: a test that tries "
                         "fails at the call) or only the integration stage; default all (unit tests are guarded "
                         "either way). Stages come from [tool.testbed.hygiene] paths and markers.")
    group.addoption("--testbed-shard", type=_shard, default=None, metavar="I/N",
                    help="run shard I of N, split by recorded durations (new tests estimated); an empty shard "
                         "passes")
    group.addoption("--testbed-flaky-check", type=_count, default=0, metavar="N",
                    help="rerun each failed test N times in a fresh process and say whether it is flaky, broken "
                         "or passes alone (order-dependent); failures stay failures")
    group.addoption("--testbed-quarantine", default=None, metavar="PATH",
                    help="quarantine file (default: [tool.testbed.hygiene] quarantine, testbed-quarantine.toml)")
    group.addoption("--testbed-durations", type=_count, default=0, metavar="N",
                    help="print the N slowest tests split into setup/call/teardown, with shared fixtures (server "
                         "starts, template builds) billed to their scope, not to the first test")
    group.addoption("--testbed-store-durations", action="store_true", default=False,
                    help="merge this run's durations into the durations file (pytest-split's format)")
    group.addoption("--testbed-durations-path", default=None, metavar="PATH",
                    help="durations file that shards are split by and --testbed-store-durations merges into "
                         "(default: [tool.testbed.hygiene] durations, .test_durations)")
    group.addoption("--testbed-durations-out", default=None, metavar="PATH",
                    help="merge this run's durations into PATH instead (a CI shard's own file, merged later with "
                         "`testbed durations merge`)")
    group.addoption("--testbed-replay", default=None, metavar="SPEC",
                    help="(used by testbed bisect and the flaky check) run exactly the tests listed in SPEC, in "
                         "that order")


class HygieneState:
    """Per-run state of the plugin (in ``config.stash``)."""

    def __init__(self, config: pytest.Config, settings: HygieneSettings) -> None:
        self.config = config
        self.settings = settings
        self.stage_option: str = config.getoption("--testbed-stage")
        self.is_controller = not hasattr(config, "workerinput") and getattr(config.option, "dist", "no") != "no"
        self.selected_by_stage: tuple[int, int] | None = None  # (kept, collected) when a stage was chosen
        self.guarded = 0


def _load_settings(config: pytest.Config) -> HygieneSettings:
    from testbed.errors import TestbedError
    from testbed.hygiene.settings import load_hygiene

    try:
        return load_hygiene(Path(str(config.rootpath)))
    except TestbedError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_configure(config: pytest.Config) -> None:
    settings = _load_settings(config)
    for name in settings.unit_markers:
        config.addinivalue_line("markers", f"{name}: a unit-stage test (testbed: no network, database or server)")
    for name in settings.integration_markers:
        config.addinivalue_line("markers", f"{name}: an integration-stage test (testbed)")
    state = HygieneState(config, settings)
    config.stash[_state_key] = state
    manager = config.pluginmanager
    replay = config.getoption("--testbed-replay")
    if replay:
        manager.register(ReplayPlugin(Path(replay)), "testbed-hygiene-replay")
    elif (config.pluginmanager.hasplugin("cacheprovider") and getattr(config, "cache", None) is not None
          and not config.option.collectonly):  # a --collect-only run keeps the last real run's record
        manager.register(OrderRecorder(state), "testbed-hygiene-order")
        _record_pollution_from(config)
    quarantine_option = config.getoption("--testbed-quarantine")
    quarantine_path = Path(quarantine_option) if quarantine_option else settings.quarantine_path
    if quarantine_option and not quarantine_path.is_file():
        raise pytest.UsageError(f"--testbed-quarantine={quarantine_option}: no such file.")
    if quarantine_path.is_file():
        from testbed.errors import TestbedError
        from testbed.hygiene.quarantine import load_quarantine

        try:
            quarantine = load_quarantine(quarantine_path)
        except TestbedError as exc:
            raise pytest.UsageError(str(exc)) from None
        manager.register(QuarantinePlugin(quarantine), "testbed-hygiene-quarantine")
    if (config.getoption("--testbed-durations") or config.getoption("--testbed-store-durations")
            or config.getoption("--testbed-durations-out")):
        manager.register(DurationsPlugin(state), "testbed-hygiene-durations")
    if config.getoption("--testbed-flaky-check") and not replay:
        manager.register(FlakyCheckPlugin(state, config.getoption("--testbed-flaky-check")),
                         "testbed-hygiene-flaky")
    if config.getoption("--testbed-shard") and not replay:
        manager.register(ShardPlugin(state), "testbed-hygiene-shard")


def _record_pollution_from(config: pytest.Config) -> None:
    """What isolation reports through testbed.observe (rows or connections a test left behind) becomes the
    order record's pollution note, so `testbed bisect` can name the polluter without bisecting."""
    from testbed import observe
    from testbed.hygiene.order import record_pollution

    def on_event(event: observe.BoundaryEvent) -> None:
        if event.kind == "leak" and event.data.get("test"):
            record_pollution(str(event.data["test"]), event.summary)

    config.add_cleanup(observe.subscribe(on_event))


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = config.stash.get(_state_key, None)
    if state is None or state.stage_option == "all":
        return []
    s = state.settings
    if state.stage_option == "unit":
        where = " or ".join([*s.unit_paths, *(f"@pytest.mark.{m}" for m in s.unit_markers)]) or "(none configured)"
        return [f"testbed stage: unit ({where}); no network, database or server processes"]
    return ["testbed stage: integration (every test not in the unit stage)"]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """After other plugins selected and ordered (-k, -m, pytest-randomly): stages, quarantine, shard, replay."""
    state = config.stash.get(_state_key, None)
    if state is None:
        return
    from testbed.hygiene.stages import classify

    root = state.settings.root  # [tool.testbed.hygiene] paths are relative to its pyproject.toml
    for item in items:
        try:
            relpath = item.path.relative_to(root).as_posix()
        except ValueError:
            relpath = item.path.as_posix()
        markers = [m.name for m in item.iter_markers()]
        item.stash[_stage_key] = classify(relpath, markers, state.settings)
    replay = config.pluginmanager.get_plugin("testbed-hygiene-replay")
    if replay is not None:
        replay.select(config, items)
    else:
        if state.stage_option != "all":
            keep = [i for i in items if i.stash[_stage_key].name == state.stage_option]
            _deselect(config, items, keep)
            state.selected_by_stage = (len(keep), len(items))
            items[:] = keep
        quarantine = config.pluginmanager.get_plugin("testbed-hygiene-quarantine")
        if quarantine is not None:
            quarantine.annotate(items)
        shard = config.pluginmanager.get_plugin("testbed-hygiene-shard")
        if shard is not None:
            shard.select(config, items)
    state.guarded = sum(1 for i in items if i.stash[_stage_key].guarded)
    if state.guarded and not config.pluginmanager.has_plugin("testbed-hygiene-guard"):
        config.pluginmanager.register(GuardPlugin(state), "testbed-hygiene-guard")


def _deselect(config: pytest.Config, items: list[pytest.Item], keep: list[pytest.Item]) -> None:
    kept = set(map(id, keep))
    dropped = [i for i in items if id(i) not in kept]
    if dropped:
        config.hook.pytest_deselected(items=dropped)


def pytest_report_collectionfinish(config: pytest.Config, items: list[pytest.Item]) -> list[str]:
    state = config.stash.get(_state_key, None)
    lines: list[str] = []
    if state is not None and state.selected_by_stage is not None:
        kept, collected = state.selected_by_stage
        if collected and not kept:
            s = state.settings
            paths = s.unit_paths if state.stage_option == "unit" else s.integration_paths
            markers = s.unit_markers if state.stage_option == "unit" else s.integration_markers
            lines.append(
                f"testbed: --testbed-stage={state.stage_option} selected none of the {collected} tests collected; "
                f"that stage is tests under {', '.join(paths) or '(no paths)'} or marked "
                f"{', '.join('@pytest.mark.' + m for m in markers) or '(no markers)'} ([tool.testbed.hygiene])."
            )
    shard = config.pluginmanager.get_plugin("testbed-hygiene-shard")
    if shard is not None and shard.summary:
        lines.append(shard.summary)
    return lines


# -- the unit-stage guard -------------------------------------------------------------------------------


class GuardPlugin:
    """Refuses I/O in unit-stage tests, in every phase but the session's own final teardown."""

    def __init__(self, state: HygieneState) -> None:
        from testbed.hygiene import guard

        self.guard = guard
        self.state = state
        guard.install()

    def _activation(self, item: pytest.Item) -> Activation | None:
        stage = item.stash.get(_stage_key, None)
        if stage is None or not stage.guarded:
            return None
        activation = item.stash.get(_activation_key, None)
        if activation is None:
            from testbed.hygiene.stages import how_to_move

            activation = self.guard.Activation(
                nodeid=item.nodeid, stage=stage, test_file=str(item.path),
                root=Path(str(item.config.rootpath)), how_to_move=how_to_move(self.state.settings),
            )
            item.stash[_activation_key] = activation
        return activation

    def _service_fixtures(self, item: pytest.Item) -> list[str]:
        # pytest keeps the resolved fixture closure on the item; every plugin that inspects fixtures
        # (pytest-asyncio, pytest-django) reads it there.
        info = getattr(item, "_fixtureinfo", None)
        defs = getattr(info, "name2fixturedefs", {}) if info is not None else {}
        found = []
        for name in getattr(item, "fixturenames", ()):
            chain = defs.get(name)
            if chain and self.guard.is_service_fixture(chain[-1]):
                found.append(name)
        return found

    def _run_guarded(self, item: pytest.Item, phase: str) -> Generator[None, object, object]:
        __tracebackhide__ = True
        activation = self._activation(item)
        if activation is None:
            return (yield)
        before = len(activation.violations)
        with self.guard.guarding(activation):
            try:
                result = yield
            except self.guard.UnitStageError:
                raise
            except BaseException as exc:
                if len(activation.violations) > before:
                    raise self.guard.UnitStageError(activation.violations[before]) from exc
                raise
        if len(activation.violations) > before:
            pytest.fail(activation.violations[before].join(["[unit stage] ", "\n(The code under test caught this "
                                                             "error; the test fails anyway.)"]), pytrace=False)
        return result

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        # Not a wrapper: it fails inside the other plugins' setup wrappers (logging, capture), before any
        # fixture runs, like a skip marker does.
        activation = self._activation(item)
        services = self._service_fixtures(item) if activation is not None else []
        if activation is not None and services:
            from testbed.hygiene.stages import how_to_move

            argnames = set(getattr(getattr(item, "_fixtureinfo", None), "argnames", ()))
            direct = [name for name in services if name in argnames] or services[:1]
            rest = [name for name in services if name not in direct]
            through = f" (and through it {', '.join(rest)})" if rest else ""
            pytest.fail(
                f"[unit stage] {item.nodeid} uses testbed's service fixture {', '.join(direct)}{through}, which "
                f"starts or uses a server. This test is in the unit stage because {activation.stage.reason}; "
                f"unit-stage tests run without servers.\n{how_to_move(self.state.settings)}",
                pytrace=False,
            )

    @pytest.hookimpl(wrapper=True, tryfirst=True, specname="pytest_runtest_setup")
    def guard_setup(self, item: pytest.Item) -> Generator[None, object, object]:
        return (yield from self._run_guarded(item, "setup"))

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        return (yield from self._run_guarded(item, "call"))

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_teardown(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, object, object]:
        if nextitem is None:
            # The session's last teardown also stops the servers integration tests started (their finalizers
            # run here, in the last test's teardown): that is not this test's I/O.
            return (yield)
        return (yield from self._run_guarded(item, "teardown"))


# -- the order record -------------------------------------------------------------------------------------


class OrderRecorder:
    """Appends the order of this process's tests to the pytest cache (see testbed.hygiene.order)."""

    def __init__(self, state: HygieneState) -> None:
        self.state = state
        self.writer: OrderWriter | None = None
        self.previous_writer: OrderWriter | None = None
        self.outcomes: dict[str, str] = {}
        self.failed: list[str] = []
        self.problem = ""

    def _folder(self) -> Path:
        cache = self.state.config.cache
        assert cache is not None
        return Path(cache.mkdir("testbed-order"))

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        from testbed.hygiene import order

        try:
            self._start(order)
        except OSError as exc:  # a read-only checkout: run the tests, just without a record
            self.writer = None
            self.problem = f"testbed: the order of this run was not recorded ({exc})"

    def _start(self, order: Any) -> None:
        config = self.state.config
        workerinput = getattr(config, "workerinput", None)
        if workerinput is None:
            seed = getattr(config.option, "randomly_seed", None)
            order.start_run(self._folder(), {
                "seed": seed if isinstance(seed, int) and config.pluginmanager.hasplugin("randomly") else None,
                "args": list(config.invocation_params.args),
                "invocation_dir": str(config.invocation_params.dir),
                "rootdir": str(config.rootpath),
                "xdist": self.state.is_controller,
                "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            })
        if not self.state.is_controller:
            self.writer = order.OrderWriter(self._folder(), workerinput["workerid"] if workerinput else "main")
            self.previous_writer = order.set_writer(self.writer)

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        if self.writer is not None:
            self.writer.started(nodeid)
        self.outcomes[nodeid] = "passed"

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            if self.outcomes.get(report.nodeid) != "failed":
                self.failed.append(report.nodeid)
            self.outcomes[report.nodeid] = "failed"
        elif report.skipped and self.outcomes.get(report.nodeid) == "passed":
            self.outcomes[report.nodeid] = "skipped"

    def pytest_runtest_logfinish(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        if self.writer is not None:
            self.writer.finished(nodeid, self.outcomes.get(nodeid, "passed"))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.problem:
            terminalreporter.write_line(self.problem)
            return
        if not self.failed or hasattr(self.state.config, "workerinput"):
            return
        config = self.state.config
        seed = getattr(config.option, "randomly_seed", None)
        order = f"pytest-randomly seed {seed}, " if isinstance(seed, int) else ""
        where = "per worker, " if self.state.is_controller else ""
        terminalreporter.write_line(
            f"testbed: the order of this run is recorded ({order}{where}in {self._folder()}). If a failure "
            f"depends on a test that ran before it, this finds that test: testbed bisect '{self.failed[0]}'"
        )

    def pytest_unconfigure(self) -> None:
        if self.writer is not None:
            from testbed.hygiene import order

            order.set_writer(self.previous_writer)
            self.writer.close()


# -- replays (testbed bisect, the flaky check) -------------------------------------------------------------


class ReplayPlugin:
    """Runs exactly the tests of a replay spec, in its order, and writes how each ended."""

    def __init__(self, spec: Path) -> None:
        try:
            data = json.loads(spec.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise pytest.UsageError(f"--testbed-replay={spec}: cannot read the replay spec: {exc}") from None
        self.tests: list[str] = list(data["tests"])
        self.results_path = Path(data["results"])
        self.results: list[list[str]] = []
        self._current: dict[str, list[str]] = {}
        self.repeats: dict[str, int] = {}

    def select(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        by_id = {item.nodeid: item for item in items}
        missing = [t for t in dict.fromkeys(self.tests) if t not in by_id]
        if missing:
            raise pytest.UsageError(
                f"--testbed-replay: {len(missing)} test(s) of the replay were not collected: "
                + ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
                + ". Were they renamed or removed since the recorded run?"
            )
        ordered: list[pytest.Item] = []
        for nodeid in self.tests:  # a test listed n times in a row runs n times (the flaky check)
            if ordered and ordered[-1].nodeid == nodeid:
                self.repeats[nodeid] = self.repeats.get(nodeid, 1) + 1
            else:
                ordered.append(by_id[nodeid])
        _deselect(config, items, ordered)
        items[:] = ordered

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
        repeats = self.repeats.get(item.nodeid, 1)
        if repeats == 1:
            return None
        from _pytest.runner import runtestprotocol

        for i in range(repeats):
            last = i == repeats - 1
            item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
            # Between repeats tear down the test alone (its parent as "next item"), keeping the module's and
            # the session's fixtures: a rerun, not a new session.
            runtestprotocol(item, nextitem=nextitem if last else item.parent, log=True)  # type: ignore[arg-type]
            item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        return True

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        self._current[nodeid] = ["passed", ""]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        current = self._current.setdefault(report.nodeid, ["passed", ""])
        if report.failed and current[0] != "failed":
            crash = getattr(report.longrepr, "reprcrash", None)
            current[:] = ["failed", str(getattr(crash, "message", "") or report.longreprtext[-300:])]
        elif report.skipped and current[0] == "passed":
            current[0] = "skipped"

    def pytest_runtest_logfinish(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        outcome, message = self._current.pop(nodeid, ["passed", ""])
        self.results.append([nodeid, outcome, message.splitlines()[0] if message else ""])

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.results_path.write_text(json.dumps({"results": self.results}), encoding="utf-8")


# -- quarantine -------------------------------------------------------------------------------------------


class QuarantinePlugin:
    """Quarantined tests run and report, in their own section, but their failures do not fail the build."""

    def __init__(self, quarantine: Quarantine) -> None:
        self.quarantine = quarantine
        self.today = dt.date.today()
        self.failures: dict[str, str] = {}  # nodeid -> failure line
        self.passed: set[str] = set()
        self.expired: dict[str, str] = {}  # nodeid -> entry description
        self.other_failures = 0

    def annotate(self, items: list[pytest.Item]) -> None:
        for item in items:
            entry = self.quarantine.entry_for(item.nodeid)
            if entry is not None:
                status = "expired" if entry.expired(self.today) else "quarantined"
                item.user_properties.append(("testbed_quarantine", f"{status}: {entry.describe()}"))

    def _active_entry(self, nodeid: str) -> Any:
        entry = self.quarantine.entry_for(nodeid)
        return entry if entry is not None and not entry.expired(self.today) else None

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(self, report: pytest.TestReport, config: pytest.Config) -> Any:
        if report.failed and self._active_entry(report.nodeid) is not None:
            return "quarantined", "Q", ("QUARANTINED", {"yellow": True})
        return None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        entry = self.quarantine.entry_for(report.nodeid)
        if entry is not None and entry.expired(self.today):
            self.expired[report.nodeid] = f"{entry.id}: {entry.describe()}"
        if report.failed:
            if self._active_entry(report.nodeid) is not None:
                crash = getattr(report.longrepr, "reprcrash", None)
                line = str(getattr(crash, "message", "") or "").splitlines()
                self.failures[report.nodeid] = f"{report.when}: {line[0] if line else 'failed'}"
            else:
                self.other_failures += 1
        elif report.when == "call" and report.passed and self._active_entry(report.nodeid) is not None:
            self.passed.add(report.nodeid)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not (self.failures or self.passed or self.expired):
            return
        terminalreporter.section("testbed quarantine")
        for nodeid, line in self.failures.items():
            entry = self.quarantine.entry_for(nodeid)
            terminalreporter.write_line(f"QUARANTINED FAILED {nodeid} - {line}")
            terminalreporter.write_line(f"    {entry.describe() if entry else ''}; does not fail the build")
        for nodeid in sorted(self.passed - set(self.failures)):
            terminalreporter.write_line(f"QUARANTINED PASSED {nodeid} (fixed? remove its entry from "
                                        f"{self.quarantine.path.name})")
        for nodeid, what in self.expired.items():
            terminalreporter.write_line(
                f"EXPIRED {nodeid}: the quarantine of {what} has expired, so this test counts again and the build "
                f"fails until its owner fixes it and removes the entry from {self.quarantine.path} (or moves the "
                "date, with a reason)", red=True,
            )

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.expired and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        elif (session.exitstatus == pytest.ExitCode.TESTS_FAILED and self.failures and not self.other_failures
              and not self.expired):
            session.exitstatus = pytest.ExitCode.OK


# -- durations ----------------------------------------------------------------------------------------------


class DurationsPlugin:
    """Measures each test's own setup/call/teardown; bills shared fixtures to their scope."""

    def __init__(self, state: HygieneState) -> None:
        from testbed.hygiene.durations import DurationBook

        self.state = state
        self.book: DurationBook = DurationBook()
        self._children: list[float] = []
        self._phase = ""
        self._billed = 0.0
        self._scopes: list[list[Any]] = []
        self._mark = 0.0

    @staticmethod
    def _scope_id(fixturedef: Any, request: Any) -> str:
        if fixturedef.scope == "session":
            return "session"
        node = getattr(request, "node", None)
        return str(getattr(node, "nodeid", "") or "session")

    def _bill(self, fixturedef: Any, request: Any, seconds: float, what: str) -> None:
        self._billed += seconds
        self._scopes.append([self._scope_id(fixturedef, request), f"{fixturedef.argname} ({what})", seconds])

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef: Any, request: Any) -> Generator[None, object, object]:
        start = time.perf_counter()
        self._children.append(0.0)
        try:
            return (yield)
        finally:
            elapsed = time.perf_counter() - start
            children = self._children.pop()
            if self._children:
                self._children[-1] += elapsed
            if fixturedef.scope != "function":
                self._bill(fixturedef, request, elapsed - children, "setup")

    def pytest_fixture_post_finalizer(self, fixturedef: Any, request: Any) -> None:
        if self._phase != "teardown":
            return
        now = time.perf_counter()
        if fixturedef.scope != "function":
            self._bill(fixturedef, request, now - self._mark, "teardown")
        self._mark = now

    def _start(self, phase: str) -> None:
        self._phase, self._billed, self._scopes = phase, 0.0, []
        self._mark = time.perf_counter()

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, object, object]:
        self._start("setup")
        return (yield)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        self._start("call")
        return (yield)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_teardown(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, object, object]:
        self._start("teardown")
        return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: Any) -> Generator[None, Any, Any]:
        report = yield
        report.testbed_billed = self._billed
        report.testbed_scopes = self._scopes
        self._phase, self._billed, self._scopes = "", 0.0, []
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not hasattr(self.state.config, "workerinput"):  # the controller (or the only process) keeps the book
            billed = float(getattr(report, "testbed_billed", 0.0) or 0.0)
            self.book.add_phase(report.nodeid, report.when or "call", report.duration - billed)
            for scope, fixture, seconds in getattr(report, "testbed_scopes", None) or []:
                self.book.add_scope(str(scope), str(fixture), float(seconds))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        count = self.state.config.getoption("--testbed-durations")
        if hasattr(self.state.config, "workerinput"):
            return
        if count:
            terminalreporter.section(f"testbed: {count} slowest tests (own time, seconds)")
            for line in self.book.slowest(count):
                terminalreporter.write_line(line)
        if self._store_path() is not None:
            terminalreporter.write_line(f"testbed: durations of {len(self.book.tests)} tests merged into "
                                        f"{self._store_path()}")

    def _store_path(self) -> Path | None:
        config = self.state.config
        if config.getoption("--testbed-durations-out"):
            return Path(config.getoption("--testbed-durations-out"))
        if not config.getoption("--testbed-store-durations"):
            return None
        option = config.getoption("--testbed-durations-path")
        return Path(option) if option else self.state.settings.durations_path

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        path = self._store_path()
        if hasattr(self.state.config, "workerinput") or path is None:
            return
        from testbed.hygiene.durations import merge_durations, read_durations, write_durations

        write_durations(path, merge_durations(read_durations(path), [self.book.file_entries()]))


# -- the flaky check ----------------------------------------------------------------------------------------


class FlakyCheckPlugin:
    """After a test failed, reruns it in a fresh process and attaches the verdict to its report."""

    def __init__(self, state: HygieneState, reruns: int) -> None:
        self.state = state
        self.reruns = reruns
        self.checked = 0
        self.verdicts: list[FlakyVerdict] = []

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: Any) -> Generator[None, Any, Any]:
        report = yield
        if report.failed:
            item.stash[_failed_key] = True
        if report.when != "teardown" or not item.stash.get(_failed_key, False):
            return report
        from testbed.hygiene.flaky import FlakyVerdict, check
        from testbed.hygiene.replay import ReplayOptions

        if self.checked >= FLAKY_CHECK_LIMIT:
            verdict = FlakyVerdict(item.nodeid, self.reruns, 0, 0,
                                   f"more than {FLAKY_CHECK_LIMIT} tests failed in this process: a broken suite, "
                                   "not a flaky one")
        else:
            self.checked += 1
            config = self.state.config
            seed = getattr(config.option, "randomly_seed", None)
            options = ReplayOptions(root=Path(str(config.rootpath)),
                                    seed=seed if isinstance(seed, int) and config.pluginmanager.hasplugin("randomly")
                                    else None)
            verdict = check(item.nodeid, self.reruns, options)
        report.user_properties.append(("testbed_flaky_check", verdict.describe()))
        report.testbed_flaky = verdict.to_dict()
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, "testbed_flaky", None)
        if data and not hasattr(self.state.config, "workerinput"):
            from testbed.hygiene.flaky import FlakyVerdict

            self.verdicts.append(FlakyVerdict.from_dict(data))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.verdicts:
            return
        from testbed.hygiene.quarantine import entry_snippet

        terminalreporter.section("testbed flaky check")
        for verdict in self.verdicts:
            terminalreporter.write_line(f"{verdict.kind.upper()} {verdict.nodeid}: {verdict.describe()}")
        flaky = [v for v in self.verdicts if v.kind == "flaky"]
        if flaky:
            terminalreporter.write_line(
                "These failures still fail the run. To keep a flaky test running without failing the build while "
                f"its owner fixes it, add it to {self.state.settings.quarantine}:"
            )
            for verdict in flaky:
                snippet = entry_snippet(verdict.nodeid, verdict.describe(), today=dt.date.today())
                for line in snippet.splitlines():
                    terminalreporter.write_line("    " + line)


# -- shards -------------------------------------------------------------------------------------------------


class ShardPlugin:
    """Keeps this shard's tests; an empty shard passes."""

    def __init__(self, state: HygieneState) -> None:
        self.state = state
        self.summary = ""
        self.empty = False
        index, count = (int(p) for p in state.config.getoption("--testbed-shard").split("/"))
        self.index, self.count = index, count

    def _path(self) -> Path:
        option = self.state.config.getoption("--testbed-durations-path")
        return Path(option) if option else self.state.settings.durations_path

    def select(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        from testbed.errors import TestbedError
        from testbed.hygiene.durations import read_durations
        from testbed.hygiene.sharding import split

        path = self._path()
        try:
            durations = read_durations(path)
        except TestbedError as exc:
            raise pytest.UsageError(str(exc)) from None
        plan = split([i.nodeid for i in items], durations, self.count)
        mine = set(plan.shards[self.index - 1])
        keep = [i for i in items if i.nodeid in mine]
        source = f"durations from {path.name}" if durations else f"no durations in {path.name}: split by count"
        new = ""
        if durations and plan.unknown:
            new = f"; {plan.unknown} without a recorded duration estimated from their module"
        self.summary = (f"testbed shard {self.index}/{self.count}: {len(keep)} of {len(items)} tests, estimated "
                        f"{plan.loads[self.index - 1]:.1f}s (heaviest shard {max(plan.loads):.1f}s; {source}{new})")
        self.empty = not keep
        _deselect(config, items, keep)
        items[:] = keep
        workeroutput = getattr(config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput["testbed_shard_empty"] = self.empty

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", None) or {}
        if "testbed_shard_empty" in output:
            self.empty = bool(output["testbed_shard_empty"])

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.empty and session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
            session.exitstatus = pytest.ExitCode.OK

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.empty and not hasattr(self.state.config, "workerinput"):
            terminalreporter.write_line(
                f"testbed: shard {self.index}/{self.count} has no tests (more shards than work); it passes."
            )
