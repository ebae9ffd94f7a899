"""Durations billed honestly, the durations file shared with pytest-split, shards that split by it, and
the CI workflows `testbed ci` writes, validated and run."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from testbed import cli

CONFTEST = '''
import time
import pytest


@pytest.fixture(scope="session")
def server():
    time.sleep(0.4)  # a server start
    yield "server"


@pytest.fixture(scope="module")
def schema(server):
    time.sleep(0.2)  # a template build
    return "schema"
'''

TESTS = '''
def test_first(server, schema):
    pass


def test_second(schema):
    pass
'''


def slowest_rows(lines: list[str]) -> dict[str, list[float]]:
    rows = {}
    for line in lines:
        parts = line.split()
        if len(parts) == 5 and "::" in parts[4]:
            rows[parts[4]] = [float(p) for p in parts[:4]]
    return rows


def test_session_and_module_setup_is_billed_to_its_scope_not_the_first_test(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_a=TESTS)
    result = pytester.runpytest("-p", "no:randomly", "--testbed-durations=5", "--testbed-store-durations")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*testbed: 5 slowest tests (own time, seconds)*",
                                 "billed to shared scopes, not to the first test that needed them:",
                                 "*session: server (setup) *", "*test_a.py: schema (setup) *"])
    rows = slowest_rows(result.outlines)
    pytest_setup = {r.nodeid: r.duration for r in result.reprec.getreports("pytest_runtest_logreport")  # type: ignore[attr-defined]
                    if r.when == "setup"}
    # pytest itself bills both fixtures to the first test's setup; testbed takes them out.
    assert pytest_setup["test_a.py::test_first"] > 0.6
    assert rows["test_a.py::test_first"][1] < pytest_setup["test_a.py::test_first"] - 0.6
    durations = json.loads((pytester.path / ".test_durations").read_text())
    assert set(durations) == {"test_a.py::test_first", "test_a.py::test_second", "test_a.py"}
    assert durations["test_a.py"] >= 0.2  # the module's fixture setup, once


def test_the_durations_file_is_pytest_splits(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a="\n".join(f"def test_{i}():\n    pass\n" for i in range(6)))
    pytester.runpytest("-p", "no:randomly", "--testbed-store-durations").assert_outcomes(passed=6)
    counts = []
    for group in ("1", "2"):
        result = pytester.runpytest("-p", "no:randomly", "--splits", "2", "--group", group,
                                    "--durations-path", ".test_durations")
        result.stdout.no_fnmatch_line("*No test durations found*")
        counts.append(result.parseoutcomes().get("passed", 0))
    assert sum(counts) == 6  # how pytest-split groups them depends on the measured times (one may be empty)


def shard_ids(pytester: pytest.Pytester, shard: str, *extra: str) -> tuple[int, list[str]]:
    result = pytester.runpytest("-p", "no:randomly", "--co", "-q", f"--testbed-shard={shard}", *extra)
    return result.ret, [line for line in result.outlines if "::" in line]


def test_shards_cover_the_suite_once_and_an_empty_shard_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a="\n".join(f"def test_{i}():\n    pass\n" for i in range(7)))
    durations = {f"test_a.py::test_{i}": float(i + 1) for i in range(6)}  # test_6 is new
    (pytester.path / ".test_durations").write_text(json.dumps(durations))
    shards = [shard_ids(pytester, f"{i}/3")[1] for i in (1, 2, 3)]
    assert sorted(t for s in shards for t in s) == sorted(f"test_a.py::test_{i}" for i in range(7))
    result = pytester.runpytest("-p", "no:randomly", "--testbed-shard=1/3")
    result.stdout.fnmatch_lines(["testbed shard 1/3: * of 7 tests, estimated *s (heaviest shard *s; durations from "
                                 ".test_durations; 1 without a recorded duration estimated from their module)"])
    empty = pytester.runpytest("-p", "no:randomly", "--testbed-shard=9/9", "-k", "test_0")
    assert empty.ret == pytest.ExitCode.OK
    empty.stdout.fnmatch_lines(["testbed: shard 9/9 has no tests (more shards than work); it passes."])
    nothing = pytester.runpytest("-p", "no:randomly", "-k", "nomatch")
    assert nothing.ret == pytest.ExitCode.NO_TESTS_COLLECTED  # without shards, no tests is still an error
    bad = pytester.runpytest("--testbed-shard=4/3")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*'4/3': I must be from 1 to N, and N at least 1*"])


def test_durations_merge_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    into = tmp_path / ".test_durations"
    into.write_text(json.dumps({"t.py::a": 1.0, "t.py::deleted": 5.0}))
    (tmp_path / "d1.json").write_text(json.dumps({"t.py::a": 2.0}))
    (tmp_path / "d2.json").write_text(json.dumps({"t.py::b": 3.0}))
    args = ["--root", str(tmp_path), "durations", "merge", str(tmp_path / "d1.json"), str(tmp_path / "d2.json"),
            str(tmp_path / "d3.json"), "--into", str(into), "--prune"]
    assert cli.main(args) == 0
    assert json.loads(into.read_text()) == {"t.py::a": 2.0, "t.py::b": 3.0}
    assert "d3.json does not exist (a shard that did not finish?); skipped" in capsys.readouterr().err
    assert cli.main(["--root", str(tmp_path), "durations", "show", "--file", str(into)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].endswith("60.0%  t.py::b")


def validate(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("system", "schema"), [("github", "vendor.github-workflows"), ("gitlab", "vendor.gitlab-ci")])
def test_ci_workflows_are_valid_and_their_commands_run(pytester: pytest.Pytester, system: str, schema: str) -> None:
    pytester.makefile(".toml", pyproject="[tool.testbed.hygiene]\nshards = 3\n")
    (pytester.path / "tests" / "unit").mkdir(parents=True)
    (pytester.path / "tests" / "integration").mkdir()
    (pytester.path / "tests" / "unit" / "test_u.py").write_text("def test_u():\n    pass\n")
    (pytester.path / "tests" / "integration" / "test_i.py").write_text(
        "\n".join(f"def test_{i}():\n    pass\n" for i in range(5)))
    root = str(pytester.path)
    assert cli.main(["--root", root, "ci", system]) == 0
    path = pytester.path / (".github/workflows/testbed.yml" if system == "github" else ".gitlab-ci.yml")
    checked = validate(schema, path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    broken = path.with_name("broken.yml")
    broken.write_text(path.read_text().replace("runs-on:", "runs_on:").replace("stage: unit", "stage: [unit"))
    assert validate(schema, broken).returncode != 0  # the validator does catch a broken file
    assert cli.main(["--root", root, "ci", system]) == 1  # never overwrites without --force

    # Run the commands of both stages as the CI would (shard by shard), then the merge job.
    text = path.read_text()
    commands = [line.split("python -m pytest ", 1)[1] for line in text.splitlines() if "python -m pytest " in line]
    unit, integration = commands
    assert pytester.runpytest(*shlex.split(unit)).ret == pytest.ExitCode.OK
    index = "${{ matrix.shard }}" if system == "github" else "$CI_NODE_INDEX"
    for shard in ("1", "2", "3"):
        args = integration.replace(index, shard).replace("$CI_NODE_TOTAL", "3")
        assert pytester.runpytest("-p", "no:randomly", *shlex.split(args)).ret == pytest.ExitCode.OK
    merge = next(line for line in text.splitlines() if "testbed durations merge" in line).split("testbed ", 1)[1]
    shard_files = sorted(str(p) for p in (pytester.path / "reports").glob("durations-*.json"))
    merge_args = shlex.split(merge.replace("reports/durations-*.json", " ".join(shard_files)))
    assert cli.main(["--root", root, *merge_args[:-3], "--into", str(pytester.path / ".test_durations"),
                         "--prune"]) == 0
    merged = json.loads((pytester.path / ".test_durations").read_text())
    assert sorted(merged) == [f"tests/integration/test_i.py::test_{i}" for i in range(5)]
    assert (pytester.path / "reports" / "unit.xml").is_file()
