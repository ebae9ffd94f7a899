"""Per-test isolation seen from a user's suite, run through pytester in a subprocess (real pytest runs)."""

from __future__ import annotations

import pytest

WRITE_THEN_READ = """
import psycopg
import pytest

def test_a_writes(db):
    db.execute("insert into customers (name) values ('a')")
    db.commit()  # code under test may commit: it becomes a savepoint
    assert db.execute("select count(*) from customers").fetchone()[0] == 1

def test_b_reads(db):
    assert db.execute("select count(*) from customers").fetchone()[0] == 0
"""


def test_rollback_isolation_in_both_orders(project: pytest.Pytester) -> None:
    project.makepyfile(test_iso=WRITE_THEN_READ)
    project.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=2)
    reordered = WRITE_THEN_READ.replace("test_a_writes", "test_z_writes")
    project.makepyfile(test_iso=reordered)
    project.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=2)


def test_db_session_commit_leaves_nothing(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        from sqlalchemy import text

        def test_orm_commits(db_session, db):
            db_session.execute(text("insert into customers (name) values ('orm')"))
            db_session.commit()
            db_session.execute(text("insert into customers (name) values ('rolled back')"))
            db_session.rollback()
            # db and db_session share the test's transaction
            assert db.execute("select name from customers").fetchall() == [("orm",)]

        def test_nothing_left(db):
            assert db.execute("select count(*) from customers").fetchone()[0] == 0
        """
    )
    project.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=2)


TRUNCATE_SUITE = """
import psycopg
import pytest
from sqlalchemy import create_engine, text

STRATEGY = {strategy!r}

@pytest.mark.testbed(isolation=STRATEGY)
def test_a_commits_through_own_engine(db_url):
    engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        cid = conn.execute(text("insert into customers (name) values ('x') returning id")).scalar()
        conn.execute(text("insert into orders (customer_id, total) values (:c, 9.99)"), {{"c": cid}})
        conn.execute(text("delete from statuses where code = 'new'"))
    engine.dispose()

@pytest.mark.testbed(isolation=STRATEGY)
def test_b_sees_template_state(db_url):
    with psycopg.connect(db_url) as conn:
        assert conn.execute("select count(*) from orders").fetchone()[0] == 0
        # seed rows from the migrations are restored, not lost
        assert conn.execute("select code from statuses order by code").fetchall() == [("new",), ("paid",)]
        # ids restart: the next test's first insert gets id 1
        assert conn.execute("insert into customers (name) values ('y') returning id").fetchone()[0] == 1
"""


@pytest.mark.parametrize("strategy", ["truncate", "clone"])
def test_commit_strategies_leave_nothing_in_both_orders(project: pytest.Pytester, strategy: str) -> None:
    suite = TRUNCATE_SUITE.format(strategy=strategy)
    project.makepyfile(test_commits=suite)
    project.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=2)
    project.makepyfile(test_commits=suite.replace("test_a_commits", "test_z_commits"))
    project.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=2)


def test_xdist_starts_one_server_and_separates_workers(project: pytest.Pytester) -> None:
    body = "\n".join(
        f"""
def test_{i}(postgres, db, tmp_path_factory):
    import os
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    out = tmp_path_factory.getbasetemp().parent.parent / f"pid-{{worker}}-{i}"
    out.write_text(f"{{postgres.endpoint.pid}} {{postgres.url.rsplit('/', 1)[1]}}")
    db.execute("insert into customers (name) values ('w')")
    db.commit()
    assert db.execute("select count(*) from customers").fetchone()[0] == 1
"""
        for i in range(8)
    )
    project.makepyfile(test_par=body)
    result = project.runpytest_subprocess("-n", "2", "-p", "no:randomly")
    result.assert_outcomes(passed=8)
    records = [p.read_text().split() for p in project.path.rglob("pid-gw*")]
    assert len(records) == 8
    assert len({pid for pid, _ in records}) == 1, "every worker must use the controller's one server"
    assert {db for _, db in records} == {"testbed_gw0", "testbed_gw1"}


def test_clone_and_truncate_under_xdist(project: pytest.Pytester) -> None:
    suite = TRUNCATE_SUITE.format(strategy="truncate") + TRUNCATE_SUITE.format(strategy="clone").replace(
        "def test_", "def test_clone_"
    ).replace("STRATEGY = 'clone'", "").replace("isolation=STRATEGY", "isolation='clone'")
    project.makepyfile(test_mixed=suite)
    project.runpytest_subprocess("-n", "2").assert_outcomes(passed=4)


def test_leaked_connection_fails_the_test_and_names_it(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import psycopg
        import pytest

        KEEP = []

        def test_leaks(db_url):
            conn = psycopg.connect(db_url, application_name="orders-api-pool")
            conn.execute("select 'still here'")
            KEEP.append(conn)

        @pytest.mark.testbed(leak_check=False, reason="owned by a session pool on purpose")
        def test_leak_allowed(db_url):
            KEEP.append(psycopg.connect(db_url))

        def test_next_is_clean(db):
            assert db.execute("select 1").fetchone() == (1,)
        """
    )
    result = project.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=1)  # the leak is the test's one failure
    result.stdout.fnmatch_lines(["*connection(s) opened by test_*::test_leaks are still open*",
                                 "*orders-api-pool*last query: \"select 'still here'\"*"])


def test_leak_check_off_needs_a_reason(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import pytest

        @pytest.mark.testbed(leak_check=False)
        def test_x(db):
            pass
        """
    )
    result = project.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*leak_check=False) needs reason=*"])


def test_isolation_none_reports_rows_left_behind(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import pytest

        @pytest.mark.testbed(isolation="none")
        def test_leaves_rows(db):
            db.execute("insert into customers (name) values ('left'), ('behind')")
            db.commit()

        def test_next_starts_clean(db):
            assert db.execute("select count(*) from customers").fetchone()[0] == 0
        """
    )
    result = project.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)  # the leak is the test's one failure
    result.stdout.fnmatch_lines(["*left rows behind*", "*customers: 2 row(s)*"])


def test_rollback_reports_commits_from_other_connections(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import psycopg

        def test_app_commits_elsewhere(db_url):
            with psycopg.connect(db_url) as conn:
                conn.execute("insert into customers (name) values ('escaped')")

        def test_next_starts_clean(db):
            assert db.execute("select count(*) from customers").fetchone()[0] == 0
        """
    )
    result = project.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)  # the leak is the test's one failure
    result.stdout.fnmatch_lines(["*committed through another connection*isolation='truncate'*"])


def test_postgres_fixture_reports_version_and_binary(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import psycopg

        def test_info(postgres):
            assert postgres.version.split(".")[0] in ("15", "16")
            assert postgres.binary.endswith("postgres")
            with psycopg.connect(postgres.url) as conn:  # TCP with the generated password
                assert conn.execute("select current_database()").fetchone()[0] == "testbed_main"
            assert "127.0.0.1" in postgres.url
        """
    )
    project.runpytest_subprocess().assert_outcomes(passed=1)


def test_clone_reports_a_leaked_connection_and_drops_every_clone(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import psycopg
        import pytest

        KEEP = []

        @pytest.mark.testbed(isolation="clone")
        def test_a_leaks(db_url):
            KEEP.append(psycopg.connect(db_url, application_name="leaky-worker"))

        @pytest.mark.testbed(isolation="clone")
        def test_b_fresh(db):
            assert db.execute("select count(*) from customers").fetchone() == (0,)
            db.execute("insert into customers (name) values ('b')")
            db.commit()

        @pytest.mark.testbed(isolation="clone")
        def test_c_fresh_again(db, postgres):
            assert db.execute("select count(*) from customers").fetchone() == (0,)

        def test_z_no_clone_left_but_the_running_ones(postgres):
            with psycopg.connect(postgres.server_url) as conn:
                names = [r[0] for r in conn.execute(
                    "select datname from pg_database where datname like 'testbed_main_c%'").fetchall()]
            assert len(names) <= 2  # the one prepared for a next clone test, and one being dropped
        """
    )
    result = project.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=3, failed=1)  # the leak is the test's one failure
    result.stdout.fnmatch_lines(["*opened by test_*::test_a_leaks are still open*", "*leaky-worker*"])


IDLE_IN_TRANSACTION = """
import psycopg
import pytest

POOL = []

@pytest.fixture(scope="session")
def app_connection(postgres):
    conn = psycopg.connect(postgres.url, application_name="app-pool")  # opened before any test starts
    POOL.append(conn)
    yield conn
    conn.close()

@pytest.mark.testbed(isolation="truncate")
def test_1_leaves_a_transaction_open(app_connection, db_url):
    app_connection.execute("insert into customers (name) values ('committed')")
    app_connection.commit()
    app_connection.execute("select count(*) from customers")  # no commit: idle in transaction, lock held

@pytest.mark.testbed(isolation="truncate")
def test_2_next(db):
    assert db.execute("select count(*) from customers").fetchone() == (0,)

@pytest.mark.testbed(isolation="truncate")
def test_3_next(db):
    db.execute("insert into customers (name) values ('ok')")
"""


def test_a_connection_idle_in_transaction_fails_fast_naming_it(project: pytest.Pytester) -> None:
    project.makepyfile(IDLE_IN_TRANSACTION)
    result = project.runpytest_subprocess("-p", "no:randomly")
    # Only the test that left it fails (before: every later truncate test waited and failed too).
    result.assert_outcomes(passed=2, failed=1)  # the leak is the test's one failure
    result.stdout.fnmatch_lines([
        "*_ test_1_leaves_a_transaction_open _*",
        "*held locks on this test's tables and blocked the cleanup*",
        "*backend pid * app-pool from *, idle in transaction, last query: 'select count(*) from customers'*",
    ])


def test_ids_a_rolled_back_test_took_are_given_again(project: pytest.Pytester) -> None:
    # Sequences are not transactional: a rolled-back insert still moves its table's sequence. A test that
    # commits for real after rollback tests gets the ids it would get after the template (the basics
    # example's test_ids_restart_for_every_test failed under -n 2 when its worker had run a rollback test
    # that created a customer through db_session first).
    project.makepyfile(test_ids="""
        import pytest
        from sqlalchemy import text

        def test_0_through_a_session(db_session):
            db_session.execute(text("insert into customers (name) values ('s')"))
            db_session.commit()

        def test_a_rolled_back(db):
            db.execute("insert into customers (name) values ('a')")

        @pytest.mark.testbed(isolation="truncate")
        def test_c_truncated(db):
            assert db.execute("insert into customers (name) values ('c') returning id").fetchone() == (1,)
            db.commit()
        """)
    project.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=3)
