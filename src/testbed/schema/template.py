"""The template database: migrations applied once, plus testbed's own bookkeeping schema.

Besides the project's schema, the template gets a ``testbed`` schema holding:
- ``testbed.instance``: a marker row. Truncate and clone refuse to touch a database without it, which ties
  the data-safety guard to the database actually connected to, not to a URL or an env var.
- dirty-table tracking: a statement-level trigger on every table records, once per transaction, that
  the table was written (INSERT/UPDATE/DELETE/TRUNCATE, from any connection; reads never fire it).
- seed snapshots: tables the migrations filled are copied, and every sequence's state is recorded, so
  ``testbed.reset()`` can put written tables back to exactly their template state in one round trip.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass, field
from typing import Any

import psycopg

from testbed.errors import ConfigError
from testbed.schema import migrations
from testbed.schema.migrations import MigrationSource

# Advisory lock namespace (first key) of run liveness locks on shared servers.
OWNER_LOCK_CLASS = 0x7E57BED


@dataclass(frozen=True)
class RunOwner:
    """Who owns per-run databases on a shared server: a run id, where it runs, and its liveness lock.

    The run holds ``pg_advisory_lock(lock_class, lock_key)`` on the server for as long as it lives; the lock
    works across hosts and PID namespaces, where a pid tells nothing.
    """

    run: str = field(default_factory=lambda: secrets.token_hex(4))
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    lock_class: int = OWNER_LOCK_CLASS
    lock_key: int = 0

    def __post_init__(self) -> None:
        if not self.lock_key:
            object.__setattr__(self, "lock_key", int(self.run, 16) - (1 << 31))  # a signed int4

    def describe(self) -> str:
        return f"run {self.run} (pid {self.pid} on {self.host})"


# Part of the cluster cache key: change it whenever the SQL below changes.
BOOKKEEPING_VERSION = "6"

BOOKKEEPING_SQL = r"""
CREATE SCHEMA testbed;
COMMENT ON SCHEMA testbed IS 'testbed bookkeeping: dirty-table tracking and seed snapshots (test databases only)';
CREATE TABLE testbed.instance (created_by text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO testbed.instance (created_by) VALUES ('testbed');
-- Which run owns a per-run database on a shared server (empty in the template): its id, host, pid and
-- the session-level advisory lock it holds while alive, so another run can prove it dead before a drop.
CREATE TABLE testbed.owner (run text NOT NULL, host text NOT NULL, pid int NOT NULL, lock_class int NOT NULL,
                            lock_key int NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE UNLOGGED TABLE testbed.dirty (relid oid NOT NULL, pid int NOT NULL, PRIMARY KEY (relid, pid));
CREATE TABLE testbed.seed (relid oid PRIMARY KEY, snapshot text NOT NULL, columns text NOT NULL);
CREATE TABLE testbed.sequence_state (seqid oid PRIMARY KEY, relid oid, last_value bigint NOT NULL,
                                     is_called boolean NOT NULL);

CREATE FUNCTION testbed.mark_dirty() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  -- Once per table per transaction: a transaction-local setting remembers it was recorded.
  IF coalesce(current_setting('testbed.d' || TG_RELID, true), '') <> '1' THEN
    INSERT INTO testbed.dirty VALUES (TG_RELID, pg_backend_pid()) ON CONFLICT DO NOTHING;
    PERFORM set_config('testbed.d' || TG_RELID, '1', true);
  END IF;
  RETURN NULL;
END
$fn$;

CREATE FUNCTION testbed.track_all() RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE r record;
BEGIN
  FOR r IN SELECT c.oid::regclass AS rel FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
             AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'testbed')
             AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
  LOOP
    EXECUTE format('CREATE TRIGGER testbed_dirty AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s '
                   'FOR EACH STATEMENT EXECUTE FUNCTION testbed.mark_dirty()', r.rel);
  END LOOP;
END
$fn$;

-- Tables to reload after truncation: those the migrations filled, or only the listed ones (seed_tables).
CREATE FUNCTION testbed.snapshot_seeds(only_tables text[] DEFAULT NULL) RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE r record; has_rows boolean; cols text; snap text;
BEGIN
  INSERT INTO testbed.sequence_state
    SELECT s.seqrelid, d.refobjid, coalesce(ps.last_value, s.seqstart), ps.last_value IS NOT NULL
    FROM pg_sequence s
    JOIN pg_sequences ps ON ps.schemaname = (SELECT nspname FROM pg_namespace n JOIN pg_class c
                                            ON c.relnamespace = n.oid WHERE c.oid = s.seqrelid)
                        AND ps.sequencename = (SELECT relname FROM pg_class WHERE oid = s.seqrelid)
    LEFT JOIN pg_depend d ON d.objid = s.seqrelid AND d.classid = 'pg_class'::regclass
                         AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i');
  FOR r IN SELECT c.oid AS relid, c.oid::regclass AS rel FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'testbed')
             AND n.nspname NOT LIKE 'pg_toast%'
  LOOP
    CONTINUE WHEN only_tables IS NOT NULL AND NOT (r.rel::text = ANY (only_tables));
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s)', r.rel) INTO has_rows;
    IF has_rows THEN
      SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols FROM pg_attribute
        WHERE attrelid = r.relid AND attnum > 0 AND NOT attisdropped AND attgenerated = '';
      snap := 'testbed.seed_' || r.relid;
      EXECUTE format('CREATE TABLE %s AS SELECT %s FROM %s', snap, cols, r.rel);
      INSERT INTO testbed.seed VALUES (r.relid, snap, cols);
    END IF;
  END LOOP;
END
$fn$;

-- Put every table written since the last reset back to its template state; returns their names.
-- TRUNCATE needs every table referencing a truncated one in the same statement: close the set over
-- foreign keys, then reload seed rows and sequence positions for all of it.
CREATE FUNCTION testbed.reset() RETURNS text[] LANGUAGE plpgsql AS $fn$
DECLARE targets oid[]; names text[]; r record;
BEGIN
  SELECT array_agg(DISTINCT relid) INTO targets FROM testbed.dirty;
  IF targets IS NULL THEN
    RETURN '{}';
  END IF;
  WITH RECURSIVE closure(relid) AS (
      SELECT unnest(targets)
      UNION
      SELECT con.conrelid FROM pg_constraint con JOIN closure cl ON con.confrelid = cl.relid
      WHERE con.contype = 'f'
  )
  SELECT array_agg(c.oid) INTO targets FROM closure cl JOIN pg_class c ON c.oid = cl.relid;
  IF targets IS NULL THEN  -- every dirty table was dropped
    DELETE FROM testbed.dirty;
    RETURN '{}';
  END IF;
  SELECT array_agg(t::regclass::text ORDER BY t::regclass::text) INTO names FROM unnest(targets) t;
  EXECUTE 'TRUNCATE ' || array_to_string(names, ', ');
  PERFORM set_config('session_replication_role', 'replica', true);  -- no FK checks, no dirty marks
  FOR r IN SELECT s.relid, s.snapshot, s.columns FROM testbed.seed s WHERE s.relid = ANY (targets) LOOP
    EXECUTE format('INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM %s',
                   r.relid::regclass, r.columns, r.columns, r.snapshot);
  END LOOP;
  PERFORM setval(st.seqid, st.last_value, st.is_called) FROM testbed.sequence_state st
    WHERE st.relid = ANY (targets);
  PERFORM set_config('session_replication_role', 'origin', true);
  DELETE FROM testbed.dirty;
  RETURN names;
END
$fn$;

-- Every sequence back to its template state (a clone about to serve another test).
CREATE FUNCTION testbed.reset_sequences() RETURNS void LANGUAGE sql AS $fn$
  SELECT setval(seqid, last_value, is_called) FROM testbed.sequence_state;
$fn$;

-- DDL since the template was made: a clone that saw any is dropped, not reused.
CREATE TABLE testbed.ddl (tag text NOT NULL, at timestamptz NOT NULL DEFAULT now());
CREATE FUNCTION testbed.note_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
BEGIN
  INSERT INTO testbed.ddl (tag) VALUES (tg_tag);
END
$fn$;
"""

# Installed last: the bookkeeping's own DDL (seed snapshots, triggers) must not count.
DDL_TRACKING_SQL = """
CREATE EVENT TRIGGER testbed_ddl ON ddl_command_end EXECUTE FUNCTION testbed.note_ddl();
"""


def content_key(source: MigrationSource, seed_tables: tuple[str, ...] | None = None) -> str:
    """The cluster cache key: the migrations' content hash, the bookkeeping version, the seed tables."""
    return migrations.content_key(BOOKKEEPING_VERSION, source, seed_tables)


def install_bookkeeping(conninfo: dict[str, Any], seed_tables: tuple[str, ...] | None = None) -> None:
    """Add the testbed schema to a migrated database: marker, dirty tracking, seed snapshots.

    ``seed_tables`` limits which tables are reloaded after truncation (default: every table the
    migrations filled); a listed table that does not exist is an error naming it.
    """
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        conn.execute(BOOKKEEPING_SQL.encode())
        if seed_tables is None:
            conn.execute("SELECT testbed.snapshot_seeds()")
        else:
            names: list[str] = []
            for name in seed_tables:
                row = conn.execute("SELECT to_regclass(%s)::text", (name,)).fetchone()
                if not row or row[0] is None:
                    raise ConfigError(
                        f"[tool.testbed.postgres] seed_tables names {name!r}, but the migrated schema has no "
                        "such table."
                    )
                names.append(str(row[0]))
            conn.execute("SELECT testbed.snapshot_seeds(%s)", (names,))
        conn.execute("SELECT testbed.track_all()")
        conn.execute("DELETE FROM testbed.dirty")
        conn.execute(DDL_TRACKING_SQL.encode())


def is_testbed_database(conn: psycopg.Connection[Any]) -> bool:
    """Whether the connected database carries testbed's marker (only testbed creates it)."""
    # /*testbed*/: testbed's own statements, left out of the per-test transcript (the check may run when a
    # test first asks for the worker's connection, with the statement log already on).
    row = conn.execute("/*testbed*/ SELECT to_regclass('testbed.instance') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return False
    marker = conn.execute("/*testbed*/ SELECT count(*) FROM testbed.instance WHERE created_by = 'testbed'").fetchone()
    return bool(marker and marker[0])


def mark_owner(conn: psycopg.Connection[Any], owner: RunOwner) -> None:
    """Record in a freshly created per-run database which run owns it (and commit)."""
    conn.execute(
        "INSERT INTO testbed.owner (run, host, pid, lock_class, lock_key) VALUES (%s, %s, %s, %s, %s)",
        (owner.run, owner.host, owner.pid, owner.lock_class, owner.lock_key),
    )
    conn.commit()


def read_owner(conn: psycopg.Connection[Any]) -> RunOwner | None:
    """The run that owns the connected database, None unless it is a testbed database with an owner row."""
    row = conn.execute("SELECT to_regclass('testbed.owner') IS NOT NULL AND to_regclass('testbed.instance') "
                       "IS NOT NULL").fetchone()
    if not row or not row[0] or not is_testbed_database(conn):
        return None
    found = conn.execute("SELECT run, host, pid, lock_class, lock_key FROM testbed.owner LIMIT 1").fetchone()
    return RunOwner(*found) if found else None
