"""The per-test transcript seen from a user's suite (pytester, real PostgreSQL and stub server): the section
under a failure, one failure for a teardown finding, JUnit XML, GitHub annotations, capture off."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

FAILURES = """
import httpx
import psycopg
import pytest
from testbed.stubs import post


def test_duplicate_customer(db):
    db.execute("insert into customers (name) values ('Sam')")
    db.execute("insert into customers (name) values ('Sam')")


def test_app_commits_nothing(db_url):
    with psycopg.connect(db_url) as app:   # the application's own connection
        app.execute("select count(*) from orders where total > 100")
    assert 1 == 0


def test_payment_retried(http_stub):
    http_stub.stub_for(post("/v1/charge").will_return(status=503, json={"error": "unavailable"}))
    r = httpx.post(http_stub.url + "/v1/charge", json={"amount": 5000})
    assert r.status_code == 200
"""


def section(output: str, test: str) -> str:
    """The 'testbed transcript' section printed under ``test``'s failure."""
    block = output.split(f"_ {test} _", 1)[1]
    block = block.split("\n____", 1)[0].split("\n====", 1)[0]
    assert "testbed transcript" in block, block
    return block.split("testbed transcript", 1)[1]


def test_a_failure_shows_the_sql_error_statements_and_exchanges(project: pytest.Pytester) -> None:
    project.makepyfile(test_failures=FAILURES)
    result = project.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(failed=3)
    out = result.stdout.str()
    dup = section(out, "test_duplicate_customer")
    assert "SQL errors:" in dup and "23505 duplicate key value violates unique constraint" in dup, dup
    assert "Key (name)=(Sam) already exists." in dup and "insert into customers (name) values ('Sam')" in dup
    assert dup.index("SQL errors") < dup.index("last statements")  # the error first
    app = section(out, "test_app_commits_nothing")
    # Seen by the server, from the application's own connection, named after the test (PGAPPNAME).
    assert "select count(*) from orders where total > 100" in app and "[opened by the test, pid " in app, app
    http = section(out, "test_payment_retried")
    assert "POST /v1/charge -> 503" in http and '{"amount":5000}' in http and "unavailable" in http, http


def test_a_teardown_finding_reads_as_the_tests_one_failure(project: pytest.Pytester) -> None:
    project.makepyfile(test_unmatched="""
        import httpx

        def test_passes_but_calls_an_unstubbed_url(http_stub):
            httpx.get(http_stub.url + "/v1/users/42")

        def test_fails_and_calls_an_unstubbed_url(http_stub):
            httpx.get(http_stub.url + "/v1/users/43")
            assert False, "the user was not found"
        """)
    result = project.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(failed=2, errors=0)
    out = result.stdout.str()
    assert "GET /v1/users/42 -> 404 (no stub matched)" in section(out, "test_passes_but_calls_an_unstubbed_url")
    failed = out.split("_ test_fails_and_calls_an_unstubbed_url _", 1)[1]
    assert "the user was not found" in failed and "testbed: also at teardown" in failed
    assert "matched no stub" in failed.split("testbed: also at teardown", 1)[1]


def test_junit_carries_the_transcript(project: pytest.Pytester) -> None:
    project.makepyfile(test_failures=FAILURES)
    project.runpytest_subprocess("-p", "no:randomly", "--junitxml=out.xml")  # xunit2, pytest's default
    root = ET.parse(project.path / "out.xml").getroot()
    cases = {c.get("name"): c for c in root.iter("testcase")}
    out = cases["test_duplicate_customer"].find("system-out")
    assert out is not None and out.text is not None
    assert "[call    ] [sql]" in out.text and "23505 duplicate key value" in out.text
    assert "POST /v1/charge -> 503" in (cases["test_payment_retried"].findtext("system-out") or "")
    assert all(c.find("properties") is None for c in cases.values())  # xunit2 has no per-test properties
    suite_props = {p.get("name") for p in root.iter("property")}
    assert "testbed.transcript" in suite_props

    project.runpytest_subprocess("-p", "no:randomly", "--junitxml=legacy.xml", "-o", "junit_family=xunit1")
    legacy = ET.parse(project.path / "legacy.xml").getroot()
    props = {c.get("name"): {p.get("name"): p.get("value") for p in c.iter("property")}
             for c in legacy.iter("testcase")}
    assert props["test_duplicate_customer"]["testbed.sql"] == "2"
    assert props["test_duplicate_customer"]["testbed.problems"] == "1"
    assert props["test_payment_retried"]["testbed.http"] == "1"


def test_github_actions_annotations(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    project.makepyfile(test_failures=FAILURES)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    out = project.runpytest_subprocess("-p", "no:randomly").stdout.str()
    lines = [line for line in out.splitlines() if line.startswith("::error ")]
    assert len(lines) == 3, out
    dup = next(line for line in lines if "test_duplicate_customer" in line)
    assert dup.startswith("::error file=test_failures.py,line=")
    assert "%0A" in dup and "23505 duplicate key value" in dup and "\n" not in dup


def test_capture_off(project: pytest.Pytester) -> None:
    project.makepyfile(test_failures=FAILURES)
    off = project.runpytest_subprocess("-p", "no:randomly", "--testbed-no-capture")
    off.assert_outcomes(failed=3)
    assert "testbed transcript" not in off.stdout.str()
    with open(project.path / "pyproject.toml", "a") as f:
        f.write("[tool.testbed]\ncapture = false\n")
    configured = project.runpytest_subprocess("-p", "no:randomly")
    configured.assert_outcomes(failed=3)
    assert "testbed transcript" not in configured.stdout.str()
