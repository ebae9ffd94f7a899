"""Bad input gets a clear error that says what to do: each case from a user's point of view."""

from __future__ import annotations

import socket

import pytest

USES_DB = """
def test_uses_db(db):
    db.execute("select 1")
"""


def test_no_postgres_binary_anywhere(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = project.mkdir("empty-bin")
    monkeypatch.setenv("TESTBED_BINARY_SOURCES", "path")
    monkeypatch.setenv("PATH", str(empty))  # pytester runs python by its absolute path
    project.makepyfile(USES_DB)
    result = project.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*no PostgreSQL server binary found*pip install 'pytest-testbed[[]pg[]]'*"])


def test_wrong_major_lists_what_was_found(pytester: pytest.Pytester, make_project) -> None:  # type: ignore[no-untyped-def]
    make_project(pytester.path, version="9")
    pytester.makepyfile(USES_DB)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*PostgreSQL 9 requested, but found only:*", "*(version 15.*"])
    assert "version to one of" in result.stdout.str()


def test_configured_port_taken(pytester: pytest.Pytester, make_project) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        make_project(pytester.path, table=f"port = {port}")
        pytester.makepyfile(USES_DB)
        result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*port 127.0.0.1:{port} configured for postgres is already in use*"])


def test_failing_migration_names_file_statement_and_message(
    pytester: pytest.Pytester, make_project  # type: ignore[no-untyped-def]
) -> None:
    make_project(pytester.path)
    (pytester.path / "migrations" / "002_broken.sql").write_text(
        "CREATE TABLE ok_table (id int);\n\n-- add a column\nALTER TABLE customers ADD COLUMN age intt;\n"
    )
    pytester.makepyfile(USES_DB)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*migration */migrations/002_broken.sql:4 failed: PostgreSQL said: type \"intt\" does not exist*",
        "*statement: ALTER TABLE customers ADD COLUMN age intt*",
        "*PostgreSQL's last log lines:*",
    ])


def test_failing_migration_without_position_names_statement(
    pytester: pytest.Pytester, make_project  # type: ignore[no-untyped-def]
) -> None:
    make_project(pytester.path)
    (pytester.path / "migrations" / "002_bad_data.sql").write_text(
        "INSERT INTO customers (name) VALUES ('ok');\nINSERT INTO orders (customer_id, total) VALUES (99, 1);\n"
    )
    pytester.makepyfile(USES_DB)
    result = pytester.runpytest_subprocess()
    result.stdout.fnmatch_lines([
        "*002_bad_data.sql:2 failed*violates foreign key constraint*",
        "*statement: INSERT INTO orders (customer_id, total) VALUES (99, 1)*",
    ])


def test_typo_in_config_names_valid_keys(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.testbed.postgres]\nmigration = "migrations/"\n')
    pytester.makepyfile(USES_DB)
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # before any test: the whole config is wrong
    result.stderr.fnmatch_lines(
        ["ERROR: *unknown key 'migration' in [[]tool.testbed.postgres[]]. Did you mean 'migrations'?*"]
    )


def test_typo_in_config_is_an_error_even_when_no_test_needs_a_server(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.testbed.nats]\njetstrem = false\n')
    pytester.makepyfile("def test_unit():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: *unknown key 'jetstrem' in [[]tool.testbed.nats[]]. Did you mean 'jetstream'?*"])


def test_server_dying_mid_run_fails_next_test_with_log_tail(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import os, signal, time

        def test_kill_server(postgres):
            os.kill(postgres.endpoint.pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while postgres.endpoint.alive() and time.monotonic() < deadline:
                time.sleep(0.01)

        def test_next(db):
            db.execute("select 1")
        """
    )
    result = project.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*PostgreSQL (pid *) is no longer running (setting up *test_next)*Its last log lines*"]
    )


def test_failing_migration_under_xdist_errors_the_tests_not_the_controller(
    pytester: pytest.Pytester, make_project  # type: ignore[no-untyped-def]
) -> None:
    make_project(pytester.path)
    (pytester.path / "migrations" / "002_broken.sql").write_text("CREATE TABLE broken (id intt);\n")
    pytester.makepyfile(USES_DB + "\n\ndef test_also_uses_db(db):\n    pass\n")
    result = pytester.runpytest_subprocess("-n", "2")
    result.assert_outcomes(errors=2)
    assert "INTERNALERROR" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*002_broken.sql:1 failed: PostgreSQL said: type \"intt\" does not exist*"])
