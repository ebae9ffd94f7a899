"""Per-test isolation through the library (the plugin's fixtures call the same code)."""

from __future__ import annotations

import pymysql
import pytest

from testbed.errors import GuardError, IsolationError, LeakError
from testbed.isolation.mysql import MysqlWorkerDatabase
from testbed.provision_mysql import RunningMysql


@pytest.fixture
def worker(mysql_running: RunningMysql) -> MysqlWorkerDatabase:
    return mysql_running.database


def count(conn: pymysql.connections.Connection, table: str) -> int:
    with conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {table}")
        return int(cur.fetchone()[0])


def committed_count(worker: MysqlWorkerDatabase, table: str) -> int:
    with worker.endpoint.connect(worker.dbname) as conn:
        return count(conn, table)


def test_rollback_undoes_work_and_emulates_commit(worker: MysqlWorkerDatabase) -> None:
    with worker.isolated("t", "rollback") as ctx:
        conn = ctx.connection
        with conn.cursor() as cur:
            cur.execute("INSERT INTO customers (name) VALUES ('kept until the end')")
            conn.commit()  # a savepoint, not a commit
            cur.execute("INSERT INTO customers (name) VALUES ('rolled back')")
            conn.rollback()  # back to the emulated commit
            cur.execute("SELECT name FROM customers")
            assert cur.fetchall() == (("kept until the end",),)
        assert committed_count(worker, "customers") == 0  # other connections never saw it
    assert committed_count(worker, "customers") == 0
    assert committed_count(worker, "audit") == 0


def test_rollback_tests_do_not_inherit_session_state(worker: MysqlWorkerDatabase) -> None:
    with worker.isolated("first", "rollback") as ctx, ctx.connection.cursor() as cur:
        cur.execute("CREATE TEMPORARY TABLE scratch (id INT)")  # no implicit commit for TEMPORARY
        cur.execute("SET @left_behind = 1, SESSION time_zone = '+05:00'")
    with worker.isolated("second", "rollback") as ctx, ctx.connection.cursor() as cur:
        cur.execute("SELECT @left_behind, @@SESSION.time_zone, DATABASE(), @@autocommit, @@character_set_client")
        assert cur.fetchone() == (None, "+00:00", worker.dbname, 0, "utf8mb4")
        with pytest.raises(pymysql.err.ProgrammingError, match="doesn't exist"):
            cur.execute("SELECT * FROM scratch")


def test_ddl_in_a_rollback_test_is_detected_and_repaired(worker: MysqlWorkerDatabase) -> None:
    with (
        pytest.raises(IsolationError, match=r"commits DDL .* implicitly.*isolation='clone'"),
        worker.isolated("ddl test", "rollback") as ctx,
        ctx.connection.cursor() as cur,
    ):
        cur.execute("INSERT INTO customers (name) VALUES ('committed by the DDL below')")
        cur.execute("CREATE TABLE scratch (id INT)")
    assert committed_count(worker, "customers") == 0
    with worker.endpoint.connect(worker.dbname) as conn, conn.cursor() as cur:
        cur.execute("SHOW TABLES LIKE 'scratch'")
        assert cur.fetchall() == ()


def test_commit_from_another_connection_in_a_rollback_test_is_reported_and_undone(
    worker: MysqlWorkerDatabase,
) -> None:
    with (
        pytest.raises(IsolationError, match=r"through another connection.*isolation='truncate'"),
        worker.isolated("app pool test", "rollback", leak_check=False),
        worker.endpoint.connect(worker.dbname, autocommit=True) as app,
        app.cursor() as cur,
    ):
        cur.execute("INSERT INTO customers (name) VALUES ('app')")
    assert committed_count(worker, "customers") == 0
    assert committed_count(worker, "audit") == 0


def test_truncate_cleans_only_written_tables_restores_seeds_and_ids(worker: MysqlWorkerDatabase) -> None:
    with worker.isolated("t", "truncate") as ctx:
        with worker.endpoint.connect(worker.dbname, autocommit=True) as app, app.cursor() as cur:
            cur.execute("INSERT INTO customers (name) VALUES ('a'), ('b')")
            cur.execute("DELETE FROM plans WHERE code = 'free'")
            cur.execute("SELECT COUNT(*) FROM orders")  # a read marks nothing
            cur.execute("SELECT COUNT(*) FROM plan_features")
            assert cur.fetchone()[0] == 1  # 'free' went by ON DELETE CASCADE, which fires no trigger
        marked = {t for t, _ in worker.dirty(ctx.dbname)}
        assert marked == {"customers", "audit", "plans"}
    assert worker.dirty(worker.dbname) == []
    with worker.endpoint.connect(worker.dbname, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT code FROM plans ORDER BY code")
        assert cur.fetchall() == (("free",), ("pro",))
        cur.execute("SELECT plan FROM plan_features ORDER BY plan")
        assert cur.fetchall() == (("free",), ("pro",))  # restored with its parent
        cur.execute("INSERT INTO customers (name) VALUES ('first again')")
        assert cur.lastrowid == 1  # AUTO_INCREMENT restarted
    worker.clean_tables(worker.dbname, {"customers", "audit"})


def test_truncate_notices_truncate_and_ddl_by_the_code_under_test(worker: MysqlWorkerDatabase) -> None:
    with worker.isolated("t", "truncate") as ctx, ctx.connection.cursor() as cur:
        cur.execute("SET foreign_key_checks = 0")
        cur.execute("TRUNCATE TABLE plans")  # fires no trigger
    assert committed_count(worker, "plans") == 2  # the seed rows are back
    with (
        pytest.raises(IsolationError, match=r"changed the schema of .* \(DDL on customers\).*isolation='clone'"),
        worker.isolated("t", "truncate") as ctx,
        ctx.connection.cursor() as cur,
    ):
        cur.execute("ALTER TABLE customers ADD COLUMN nickname VARCHAR(20)")
    with worker.endpoint.connect(worker.dbname) as conn, conn.cursor() as cur:
        cur.execute("SHOW COLUMNS FROM customers LIKE 'nickname'")
        assert cur.fetchall() == ()


def test_a_rollback_test_after_the_worker_database_was_rebuilt_works(worker: MysqlWorkerDatabase) -> None:
    # The rebuild ends every connection to the worker database, the idle rollback connection among them:
    # the next rollback test must not find it dead ("MySQL server has gone away" under random order).
    with worker.isolated("before", "rollback") as ctx, ctx.connection.cursor() as cur:
        cur.execute("SELECT 1")
    with pytest.raises(IsolationError), worker.isolated("ddl", "truncate") as ctx, ctx.connection.cursor() as cur:
        cur.execute("ALTER TABLE customers ADD COLUMN nickname VARCHAR(20)")
    with worker.isolated("after", "rollback") as ctx, ctx.connection.cursor() as cur:
        cur.execute("INSERT INTO customers (name) VALUES ('after the rebuild')")
        assert count(ctx.connection, "customers") == 1
    assert committed_count(worker, "customers") == 0


def test_clone_gives_a_fresh_database_and_drops_it(worker: MysqlWorkerDatabase) -> None:
    with worker.isolated("t", "clone") as ctx:
        assert ctx.dbname != worker.dbname and ctx.url.endswith("/" + ctx.dbname)
        with ctx.connection.cursor() as cur:
            cur.execute("CREATE TABLE scratch (id INT)")  # DDL is fine in a clone
            with pytest.raises(pymysql.err.IntegrityError, match="foreign key constraint fails"):
                cur.execute("INSERT INTO orders (customer_id) VALUES (42)")  # foreign keys were copied
        assert count(ctx.connection, "plans") == 2
        clone = ctx.dbname
    with worker.endpoint.connect() as conn, conn.cursor() as cur:
        cur.execute("SHOW DATABASES LIKE %s", (clone,))
        assert cur.fetchall() == ()


def test_guard_refuses_databases_testbed_did_not_create(worker: MysqlWorkerDatabase) -> None:
    with worker.endpoint.connect(autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("CREATE DATABASE IF NOT EXISTS not_ours")
        try:
            with pytest.raises(GuardError, match="refusing to drop database 'not_ours'.*did not create"):
                worker.drop("not_ours")
            with pytest.raises(GuardError, match="refusing to truncate"):
                worker.clean_tables("not_ours", {"customers"})
            cur.execute("SHOW DATABASES LIKE 'not_ours'")
            assert cur.fetchall() == (("not_ours",),)
        finally:
            cur.execute("DROP DATABASE not_ours")


def test_connection_left_open_is_reported_and_killed(worker: MysqlWorkerDatabase) -> None:
    leaked = None
    with pytest.raises(LeakError, match=r"left 1 database connection\(s\) open"), worker.isolated("leaky", "truncate"):
        leaked = worker.endpoint.connect(worker.dbname)
        with leaked.cursor() as cur:
            cur.execute("INSERT INTO customers (name) VALUES ('uncommitted')")
    assert leaked is not None
    with pytest.raises(pymysql.err.OperationalError), leaked.cursor() as cur:
        cur.execute("SELECT 1")
    assert committed_count(worker, "customers") == 0
