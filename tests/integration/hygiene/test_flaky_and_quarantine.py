"""The flaky check and the quarantine file on real suites: a planted flaky test with a seeded random
failure, a broken test, an order-dependent one; quarantined failures that cannot fail the build."""

from __future__ import annotations

import datetime as dt
import textwrap
import xml.etree.ElementTree as ET

import pytest

SUITE = '''
import pathlib
import random

ATTEMPTS = pathlib.Path(__file__).with_name("attempts.txt")
STATE = {}


def test_flaky_with_a_seeded_random_failure():
    attempt = int(ATTEMPTS.read_text()) if ATTEMPTS.exists() else 0
    ATTEMPTS.write_text(str(attempt + 1))
    # Attempt n draws from Random(14 + n): 0.11, 0.97, 0.36, 0.52 -> fail, pass, fail, pass.
    assert random.Random(14 + attempt).random() >= 0.5, f"attempt {attempt} drew a failure"


def test_broken():
    assert 2 + 2 == 5


def test_a_pollutes():
    STATE["user"] = "stale"


def test_b_depends_on_order():
    assert "user" not in STATE


def test_fine():
    pass
'''


def properties(junit: str) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        found[case.get("name", "")] = {p.get("name", ""): p.get("value", "") for p in case.iter("property")}
    return found


def test_flaky_check_classifies_each_failure_and_keeps_it_a_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest("-p", "no:randomly", "--testbed-flaky-check=3", "--junitxml=junit.xml")
    result.assert_outcomes(passed=2, failed=3)  # the check never turns a failure green
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines_random([
        "FLAKY test_suite.py::test_flaky_with_a_seeded_random_failure: flaky: passed 2 of 3 reruns in a fresh process",
        "BROKEN test_suite.py::test_broken: broken: failed all 3 reruns in a fresh process",
        "PASSES ALONE test_suite.py::test_b_depends_on_order: passes alone: passed all 3 reruns in a fresh process, "
        "so it failed only after the tests that ran before it (find the one with `testbed bisect "
        "'test_suite.py::test_b_depends_on_order'`) or it fails rarely",
        "*add it to testbed-quarantine.toml:",
        '    id = "test_suite.py::test_flaky_with_a_seeded_random_failure"',
    ])
    props = properties(str(pytester.path / "junit.xml"))
    assert props["test_flaky_with_a_seeded_random_failure"]["testbed_flaky_check"].startswith("flaky: passed 2 of 3")
    assert props["test_broken"]["testbed_flaky_check"].startswith("broken")
    assert "testbed_flaky_check" not in props["test_fine"]


def quarantine(pytester: pytest.Pytester, *entries: tuple[str, dt.date]) -> None:
    pytester.makefile(".toml", **{"testbed-quarantine": "".join(
        f'[[test]]\nid = "{nodeid}"\nreason = "known bug #12"\nowner = "sam@example.com"\nexpires = {day}\n\n'
        for nodeid, day in entries
    )})


def test_quarantined_failures_report_but_do_not_fail_the_build(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE.replace("test_flaky_with", "skip_flaky_with"))
    later = dt.date.today() + dt.timedelta(days=30)
    quarantine(pytester, ("test_suite.py::test_broken", later), ("test_suite.py::test_b_depends_on_order", later),
               ("test_suite.py::test_fine", later))
    result = pytester.runpytest("-p", "no:randomly", "--junitxml=junit.xml", "-rA")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines_random([
        "*2 passed, 2 quarantined*",
        "*testbed quarantine*",
        "QUARANTINED FAILED test_suite.py::test_broken - call: assert (2 + 2) == 5",
        f"    known bug #12 (owner sam@example.com, until {later.isoformat()}); does not fail the build",
        "QUARANTINED PASSED test_suite.py::test_fine (fixed? remove its entry from testbed-quarantine.toml)",
    ])
    root = ET.parse(str(pytester.path / "junit.xml")).getroot()
    broken = next(c for c in root.iter("testcase") if c.get("name") == "test_broken")
    assert broken.find("failure") is not None  # JUnit still shows the failure, labelled
    assert properties(str(pytester.path / "junit.xml"))["test_broken"]["testbed_quarantine"].startswith(
        "quarantined: known bug #12")

    # A failure outside the quarantine still fails the build.
    pytester.makepyfile(test_other="def test_new_bug():\n    assert False\n")
    assert pytester.runpytest("-p", "no:randomly").ret == pytest.ExitCode.TESTS_FAILED


def test_an_expired_entry_fails_the_build_naming_its_owner(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite="def test_passes_now():\n    pass\n")
    quarantine(pytester, ("test_suite.py::test_passes_now", dt.date.today() - dt.timedelta(days=1)))
    result = pytester.runpytest("-p", "no:randomly")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["EXPIRED test_suite.py::test_passes_now: the quarantine of test_suite.py::"
                                 "test_passes_now: known bug #12 (owner sam@example.com, until *) has expired*"])


def test_a_bad_quarantine_file_stops_the_run_with_the_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite="def test_a():\n    pass\n")
    pytester.makefile(".toml", **{"testbed-quarantine": textwrap.dedent("""
        [[test]]
        id = "test_suite.py::test_a"
        reason = "flaky"
        expires = 2026-01-01
    """)})
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*testbed-quarantine.toml: [[][[]test]] entry 1: missing owner: every quarantined "
                                 "test needs an id, a reason, an owner who fixes it, and an expires date*"])
    assert pytester.runpytest("--testbed-quarantine=nope.toml").ret == pytest.ExitCode.USAGE_ERROR


def test_the_flaky_check_and_the_quarantine_work_under_xdist(pytester: pytest.Pytester) -> None:
    # Without the order-dependent pair: under -n 2 its two tests may land on different workers.
    suite = SUITE.split("def test_a_pollutes")[0] + "def test_fine():\n    pass\n"
    pytester.makepyfile(test_suite=suite)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-n", "2", "--testbed-flaky-check=3")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines_random([
        "FLAKY test_suite.py::test_flaky_with_a_seeded_random_failure: flaky: passed 2 of 3 reruns in a fresh process",
        "BROKEN test_suite.py::test_broken: broken: failed all 3 reruns in a fresh process",
    ])
    (pytester.path / "attempts.txt").unlink()
    later = dt.date.today() + dt.timedelta(days=30)
    quarantine(pytester, ("test_suite.py::test_broken", later),
               ("test_suite.py::test_flaky_with_a_seeded_random_failure", later))
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-n", "2", "-rA")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines_random([
        "*1 passed, 2 quarantined*",
        "QUARANTINED FAILED test_suite.py::test_broken - call: assert (2 + 2) == 5",
    ])
