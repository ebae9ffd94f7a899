"""The unit-stage guard on real suites: a unit test that opens a socket, connects with psycopg, starts a
server or asks for a testbed service fails at the call; an integration test in the same run connects."""

from __future__ import annotations

import textwrap

import pytest

UNIT_TESTS = '''
import asyncio
import socket
import subprocess
import sys
import threading

import psycopg

import app


def test_tcp_to_the_running_postgres():
    socket.create_connection(("127.0.0.1", 5432), timeout=2)


def test_psycopg_connects_in_c():
    psycopg.connect("postgresql://postgres:secret@127.0.0.1:5432/postgres", connect_timeout=2)


def test_caught_and_ignored():
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=2)
    except Exception:
        pass


def test_from_a_thread_it_started():
    def work():
        try:
            socket.create_connection(("::1", 6379), timeout=2)
        except Exception:
            pass
    thread = threading.Thread(target=work)
    thread.start()
    thread.join()


def test_through_the_application():
    app.lifetime_values()


def test_server_process():
    subprocess.run(["pg_ctl", "--version"], check=False)


def test_asyncio_and_socketpairs_stay_allowed():
    a, b = socket.socketpair()
    a.sendall(b"x")
    assert b.recv(1) == b"x"
    a.close()
    b.close()

    async def main():
        await asyncio.sleep(0)
        return 42
    assert asyncio.run(main()) == 42


def test_other_processes_stay_allowed():
    out = subprocess.run([sys.executable, "-c", "print(1)"], capture_output=True, check=True)
    assert out.stdout.strip() == b"1"


def test_service_fixture(db):
    pass
'''

APP = '''
import psycopg


def lifetime_values():
    return psycopg.connect("host=127.0.0.1 port=5432 dbname=shop user=app", connect_timeout=2)
'''

INTEGRATION_TEST = '''
import psycopg


def test_really_connects(postgres):
    with psycopg.connect(postgres.url) as conn:
        assert conn.execute("select 1").fetchone() == (1,)


def test_and_the_db_fixture_works(db):
    assert db.execute("select 2").fetchone() == (2,)
'''


def line_of(text: str, source: str) -> int:
    return next(i for i, line in enumerate(source.splitlines(), 1) if text in line)


def test_unit_tests_fail_at_the_call_and_integration_tests_connect(two_stage: pytest.Pytester) -> None:
    (two_stage.path / "app.py").write_text(APP)
    (two_stage.path / "tests" / "unit" / "test_io.py").write_text(UNIT_TESTS)
    (two_stage.path / "tests" / "integration" / "test_db.py").write_text(INTEGRATION_TEST)
    two_stage.syspathinsert()
    result = two_stage.runpytest("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, failed=6, errors=1)
    result.stdout.fnmatch_lines_random([
        "*[[]unit stage] tests/unit/test_io.py::test_tcp_to_the_running_postgres opened a network connection to "
        "127.0.0.1:5432 (socket.connect)",
        f"*at tests/unit/test_io.py:{line_of('5432), timeout=2)', UNIT_TESTS)} in test_tcp_to_the_running_postgres",
        "*test_psycopg_connects_in_c opened a PostgreSQL connection through psycopg (libpq) to 127.0.0.1:5432/postgres",
        "*The code under test caught this error; the test fails anyway.*",
        "*test_from_a_thread_it_started opened a network connection to [[]::1]:6379*",
        f"*at app.py:{line_of('connect', APP)} in lifetime_values, called from "
        f"tests/unit/test_io.py:{line_of('app.lifetime_values()', UNIT_TESTS)} in test_through_the_application",
        "*test_server_process started the server program 'pg_ctl' (subprocess.Popen)",
        "*tests/unit/test_io.py::test_service_fixture uses testbed's service fixture db (and through it "
        "*testbed_isolation*",
        "*This test is in the unit stage because its path is under tests/unit ([[]tool.testbed.hygiene] unit_paths)*",
        "*Move it to the integration stage: move the file under tests/integration/, or mark the test "
        "@pytest.mark.integration.*",
    ])
    ours = [line for line in result.outlines if "[unit stage]" in line]
    assert ours and not any("secret" in line for line in ours)  # the target is named, never its password


def test_stages_select_and_markers_move_tests(two_stage: pytest.Pytester) -> None:
    (two_stage.path / "tests" / "unit" / "test_pure.py").write_text(textwrap.dedent('''
        import pytest
        import socket

        def test_pure():
            assert sorted([3, 1]) == [1, 3]

        @pytest.mark.integration
        def test_marked_integration_may_connect():
            try:
                socket.create_connection(("127.0.0.1", 9), timeout=0.5)
            except OSError:
                pass  # refused by the OS, not by testbed
    '''))
    (two_stage.path / "tests" / "integration" / "test_x.py").write_text(textwrap.dedent('''
        import pytest

        def test_integration():
            pass

        @pytest.mark.unit
        def test_marked_unit():
            pass
    '''))
    unit = two_stage.runpytest("-p", "no:randomly", "--testbed-stage=unit", "-v")
    unit.assert_outcomes(passed=2, deselected=2)
    unit.stdout.fnmatch_lines_random(["testbed stage: unit (tests/unit or @pytest.mark.unit); no network, database or "
                               "server processes", "*test_pure PASSED*", "*test_marked_unit PASSED*"])
    integration = two_stage.runpytest("-p", "no:randomly", "--testbed-stage=integration", "-v")
    integration.assert_outcomes(passed=2, deselected=2)
    integration.stdout.fnmatch_lines_random(["*test_marked_integration_may_connect PASSED*",
                                             "*test_integration PASSED*"])


def test_a_stage_with_no_tests_says_how_stages_are_defined(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a="def test_a():\n    pass\n")
    result = pytester.runpytest("--testbed-stage=unit")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(["testbed: --testbed-stage=unit selected none of the 1 tests collected; that stage is "
                                 "tests under tests/unit or marked @pytest.mark.unit ([[]tool.testbed.hygiene])."])


def test_config_typos_are_usage_errors(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", pyproject='[tool.testbed.hygiene]\nunit_path = ["tests/fast"]\n')
    pytester.makepyfile(test_a="def test_a():\n    pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown key 'unit_path' in [[]tool.testbed.hygiene]. Did you mean 'unit_paths'?*"])


LATE_IMPORTS = '''
import asyncio


def test_psycopg2():
    import psycopg2
    psycopg2.connect("host=127.0.0.1 port=5432 dbname=postgres user=postgres connect_timeout=2")


def test_asyncpg():
    import asyncpg
    asyncio.run(asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres", timeout=2))


def test_redis():
    import redis
    redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=2).ping()


def test_pymysql():
    import pymysql
    pymysql.connect(host="127.0.0.1", port=3306, connect_timeout=2)
'''


def test_drivers_imported_inside_the_test_are_guarded_too(two_stage: pytest.Pytester) -> None:
    # A fresh process: none of these drivers is imported before the test body imports it.
    (two_stage.path / "tests" / "unit" / "test_drivers.py").write_text(LATE_IMPORTS)
    result = two_stage.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines_random([
        "*test_psycopg2 opened a PostgreSQL connection through psycopg2 (libpq) to 127.0.0.1:5432/postgres",
        "*test_asyncpg opened a PostgreSQL connection through asyncpg to 127.0.0.1:5432/postgres",
        "*test_redis opened a Redis connection through redis-py to 127.0.0.1:6379",
        "*test_pymysql opened a MySQL connection through PyMySQL to 127.0.0.1:3306",
    ])
