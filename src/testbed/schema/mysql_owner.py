"""Which run owns a database on a shared MariaDB/MySQL server (runner = "existing"), and when it is gone.

Several runs (developers, CI jobs, checkouts) may share one server, so each run names its databases after
a random run id (``testbed_r<run>_<worker>``) and proves ownership twice before anything is dropped:

- a marker inside every database testbed creates there: a stored function ``testbed_owner()`` returning
  ``{"testbed": "run", "run": ..., "host": ..., "pid": ...}`` (a template's says which migrations it holds).
  A function, not a table: the application's schema (``SHOW TABLES``, reflection, autogenerate) stays as
  the migrations made it. A database without it, however it is named, is never touched.
- liveness: the run holds the session-level named lock ``testbed-run-<run>`` on a connection of its own for
  its whole life. The server releases it when that session ends, also when the run is SIGKILLed or its
  host vanishes, so it works across hosts and PID namespaces, where a pid tells nothing.

A run drops another run's databases only when both hold: the marker names that run and its lock can be
taken now. Templates (``testbed_tpl_<hash>``) are built once per migrations hash under a named lock and
never dropped by a run: another live run may be copying from, or reseeding out of, any of them.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

import pymysql

from testbed.engines.mysql import ADMIN_DB
from testbed.errors import ConfigError
from testbed.schema.template import RunOwner

MARKER_FUNCTION = "testbed_owner"
RUN_PREFIX = "testbed_r"
TEMPLATE_PREFIX = "testbed_tpl_"
# A dead run's database may still have a connection of a process it left (its app): never wait long on it.
DROP_LOCK_WAIT = 5
_RUN_DATABASE = re.compile(rf"^{RUN_PREFIX}([0-9a-f]{{8}})_")


def run_prefix(owner: RunOwner) -> str:
    """``testbed_r<run>``: the prefix of every database of this run (workers, clones)."""
    return f"{RUN_PREFIX}{owner.run}"


def run_lock(run: str) -> str:
    """The named lock a run holds while it lives (names are at most 64 characters)."""
    return f"testbed-run-{run}"


def template_name(content_key: str) -> str:
    """The template of one migrations content hash on a shared server."""
    return f"{TEMPLATE_PREFIX}{content_key[:20]}"


def template_lock(content_key: str) -> str:
    """The named lock under which a template is built, so concurrent runs build it once."""
    return f"testbed-template-{content_key[:20]}"


def mark(cur: Any, dbname: str, *, owner: RunOwner | None = None, template_key: str | None = None) -> None:
    """Create the marker in ``dbname``: the run that owns it, or the migrations key of a finished template."""
    if owner is not None:
        body: dict[str, Any] = {"testbed": "run", "run": owner.run, "host": owner.host, "pid": owner.pid}
    else:
        body = {"testbed": "template", "key": template_key}
    try:
        # PyMySQL interpolates on the client: the body arrives as a quoted string literal.
        cur.execute(
            f"CREATE FUNCTION `{dbname}`.`{MARKER_FUNCTION}`() RETURNS VARCHAR(500) CHARACTER SET utf8mb4 "
            "DETERMINISTIC NO SQL COMMENT 'testbed: which run created this database (do not drop)' RETURN %s",
            (json.dumps(body, sort_keys=True),),
        )
    except pymysql.err.MySQLError as exc:
        code = exc.args[0] if exc.args else 0
        if code in (1418, 1419):  # binary logging on, no SUPER: stored functions (and triggers) are refused
            raise ConfigError(
                f"the existing server refuses testbed's marker function in {dbname} (binary logging is on and "
                f"the user lacks SUPER): {exc.args[1] if len(exc.args) > 1 else exc}. testbed's write-tracking "
                "triggers need the same: SET GLOBAL log_bin_trust_function_creators = 1 on that server, or "
                "use a user with SUPER, or a server without a binary log."
            ) from None
        raise


def read_marker(cur: Any, dbname: str) -> dict[str, Any] | None:
    """The marker of ``dbname``, None when it has none (a database testbed did not create)."""
    try:
        cur.execute(f"SELECT `{dbname}`.`{MARKER_FUNCTION}`()")
        row = cur.fetchone()
    except pymysql.err.MySQLError:
        return None  # no such function, database gone meanwhile, or not ours to read
    try:
        found = json.loads(row[0]) if row and row[0] else None
    except (TypeError, ValueError):
        return None
    return found if isinstance(found, dict) and found.get("testbed") in ("run", "template") else None


def hold_run_lock(conn: Any, owner: RunOwner) -> None:
    """Take this run's liveness lock on ``conn`` (kept open for the run's life)."""
    with conn.cursor() as cur:
        # An idle session is closed after wait_timeout (a shared server may set minutes), and its lock with
        # it: the run would look dead to the others while it lives. The most Linux servers allow: a year.
        cur.execute("SET SESSION wait_timeout = 31536000")
        cur.execute("SELECT GET_LOCK(%s, 0)", (run_lock(owner.run),))
        got = cur.fetchone()
    if not got or got[0] != 1:  # a random id: only a colliding run could hold it
        raise ConfigError(f"another run holds testbed's lock {run_lock(owner.run)!r}; run again.")


def reap(conn: Any, own_run: str) -> list[str]:
    """Drop the databases of runs that are provably gone; returns a line per database dropped.

    Provably gone: the database's marker names the run its name carries, and that run's lock can be
    taken now. Anything else named like testbed's, a user's database included, is left alone.
    """
    dropped: list[str] = []
    with conn.cursor() as cur:
        cur.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'testbed%' "
                    "ORDER BY SCHEMA_NAME")
        names = [str(r[0]) for r in cur.fetchall()]
        cur.execute(f"SET SESSION lock_wait_timeout = {DROP_LOCK_WAIT}")
        for name in names:
            found = _RUN_DATABASE.match(name)
            if found is None or found.group(1) == own_run:
                continue
            marker = read_marker(cur, name)
            if marker is None or marker.get("testbed") != "run" or marker.get("run") != found.group(1):
                continue
            lock = run_lock(found.group(1))
            cur.execute("SELECT GET_LOCK(%s, 0)", (lock,))
            got = cur.fetchone()
            if not got or got[0] != 1:
                continue  # its run is alive
            try:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
                cur.execute(f"DELETE FROM `{ADMIN_DB}`.owned WHERE name = %s", (name,))
                cur.execute(f"DELETE FROM `{ADMIN_DB}`.dirty WHERE db = %s", (name,))
                dropped.append(f"dropped {name} left by run {marker.get('run')} (pid {marker.get('pid')} on "
                               f"{marker.get('host')})")
            except pymysql.err.MySQLError:
                pass  # still in use by something the dead run left: the next run tries again
            finally:
                with contextlib.suppress(pymysql.err.MySQLError):
                    cur.execute("SELECT RELEASE_LOCK(%s)", (lock,))
    return dropped
