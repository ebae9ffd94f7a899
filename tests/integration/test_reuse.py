"""Servers kept between runs: a rerun adopts the live server (same pid), changed migrations get a new template
on it, concurrent runs agree on one server, an idle or orphaned server stops, CI starts fresh."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from testbed.runners.reaper import is_same_process

TEST = """
import os
from pathlib import Path

def test_x(db, postgres):
    Path(os.environ["OUT"]).write_text(str(postgres.endpoint.pid))
    db.execute("insert into items (name) values ('a')")
    assert db.execute("select count(*) from items").fetchone() == (1,)
"""


@pytest.fixture
def kept(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.Pytester]:
    monkeypatch.setenv("TESTBED_REUSE", "1")
    # these keepers only, in a folder deep enough that a socket path in it exceeds sun_path's 107 bytes (as
    # pytest's tmp_path did on CI once its basetemp counter reached three digits)
    (tmp_path / ("deep-" * 12)).mkdir()
    monkeypatch.setenv("TESTBED_RUNS_DIR", str(tmp_path / ("deep-" * 12) / "runs"))
    monkeypatch.delenv("CI", raising=False)
    (pytester.path / "migrations").mkdir()
    (pytester.path / "migrations" / "001.sql").write_text("CREATE TABLE items (id serial, name text);\n")
    pytester.makepyprojecttoml(
        '[tool.testbed]\nreuse_idle = 600\n[tool.testbed.postgres]\nmigrations = "migrations/"\n')
    pytester.makepyfile(test_x=TEST)
    yield pytester
    subprocess.run([sys.executable, "-m", "testbed.cli", "down"], check=False, capture_output=True)


def _run(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, out: str, *args: str) -> int:
    monkeypatch.setenv("OUT", str(project.path / out))
    project.runpytest_subprocess("-p", "no:randomly", *args).assert_outcomes(passed=1)
    return int((project.path / out).read_text())


def test_a_rerun_adopts_the_kept_server(kept: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _run(kept, monkeypatch, "a")
    second = _run(kept, monkeypatch, "b")
    assert first == second, "the second run started a server of its own"
    third = _run(kept, monkeypatch, "c", "-n", "2")  # xdist's controller adopts it too
    assert third == first
    out = subprocess.run([sys.executable, "-m", "testbed.cli", "down"], capture_output=True, text=True, timeout=60)
    assert "stopped the kept postgres server" in out.stdout
    assert not is_same_process(first, None)


def test_a_changed_migration_builds_a_new_template_on_the_same_server(kept: pytest.Pytester,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    first = _run(kept, monkeypatch, "a")
    (kept.path / "migrations" / "002.sql").write_text("ALTER TABLE items ADD COLUMN price int NOT NULL DEFAULT 1;\n")
    kept.makepyfile(test_x=TEST.replace("assert db.execute", "assert db.execute('select price from items')"
                                        ".fetchone() == (1,)\n    assert db.execute"))
    assert _run(kept, monkeypatch, "b") == first


def test_concurrent_runs_agree_on_one_server(kept: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    procs = []
    for name in ("a", "b", "c"):
        monkeypatch.setenv("OUT", str(kept.path / name))
        procs.append(subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly",
                                       "-p", "no:cacheprovider"], cwd=kept.path, stdout=subprocess.DEVNULL))
    assert [p.wait(300) for p in procs] == [0, 0, 0]
    pids = {(kept.path / name).read_text() for name in ("a", "b", "c")}
    assert len(pids) == 1, pids


def test_an_orphaned_kept_server_stops_after_the_idle_time(kept: pytest.Pytester,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    kept.makepyprojecttoml('[tool.testbed]\nreuse_idle = 1\n[tool.testbed.postgres]\nmigrations = "migrations/"\n')
    kept.makepyfile(test_hang="""
import os, time
from pathlib import Path

def test_hang(postgres):
    Path(os.environ["OUT"]).write_text(str(postgres.endpoint.pid))
    time.sleep(120)
""")
    pid = int(_killed_after_it_wrote(kept, monkeypatch, "pid"))  # the kernel closes the dead run's lease
    deadline = time.monotonic() + 60
    while is_same_process(pid, None) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not is_same_process(pid, None), "a kept server outlived its last run by far more than reuse_idle"


def _killed_after_it_wrote(kept: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, out: str,
                           check: Callable[[str], bool] = lambda value: True) -> str:
    """Run test_hang.py until it has written file ``out`` (OUT), then SIGKILL it; what it wrote. ``check``
    holds while the run is still alive."""
    monkeypatch.setenv("OUT", str(kept.path / out))
    with subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "test_hang.py"],
                          cwd=kept.path, stdout=subprocess.DEVNULL) as run:
        deadline = time.monotonic() + 120
        while not (kept.path / out).exists() or not (kept.path / out).read_text():
            assert run.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        value = (kept.path / out).read_text()
        assert check(value), value
        run.send_signal(signal.SIGKILL)
    return value


def test_ci_runs_start_fresh(kept: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TESTBED_REUSE")
    monkeypatch.setenv("CI", "true")
    first = _run(kept, monkeypatch, "a")
    assert not is_same_process(first, None), "a CI run left its server running"
    assert _run(kept, monkeypatch, "b") != first


def _kept_databases(kept: pytest.Pytester) -> list[str]:
    """The databases on the one kept server of this test's records folder, by name."""
    import json
    import os

    import psycopg

    (record,) = [p for p in (Path(os.environ["TESTBED_RUNS_DIR"]) / "kept").glob("*.json")
                 if not p.name.endswith(".request.json")]
    endpoint = json.loads(record.read_text())["endpoint"]
    with psycopg.connect(host=endpoint["socket_dir"], port=endpoint["port"], user=endpoint["user"],
                         dbname="postgres", autocommit=True) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'testbed%' ORDER BY 1").fetchall()
    return [r[0] for r in rows]


def _settled(kept: pytest.Pytester, check: Callable[[list[str]], bool]) -> list[str]:
    """The kept server's databases once ``check`` holds (the keeper drops and copies after a run ends)."""
    deadline = time.monotonic() + 60
    names = _kept_databases(kept)
    while not check(names) and time.monotonic() < deadline:
        time.sleep(0.05)
        names = _kept_databases(kept)
    return names


def test_the_keeper_drops_a_runs_databases_and_copies_spares_for_the_next(kept: pytest.Pytester,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def runs(names: list[str]) -> list[str]:
        return [n for n in names if n.startswith("testbed_r")]

    def spares(names: list[str]) -> list[str]:
        return [n for n in names if n.startswith("testbed_spare_")]

    _run(kept, monkeypatch, "a")
    after_one = _settled(kept, lambda names: not runs(names) and len(spares(names)) == 1)
    assert not runs(after_one) and len(spares(after_one)) == 1, after_one
    # A test for each xdist worker, each holding its database until the other has one: two claims at once,
    # one served by the spare and one copied; the keeper then keeps two spares ready.
    together = """
import os, time
from pathlib import Path

def test_{n}(db):
    here = Path(os.environ["OUT"])
    here.mkdir(exist_ok=True)
    (here / db.info.dbname).touch()
    deadline = time.monotonic() + 120
    while len(list(here.iterdir())) < 2:
        assert time.monotonic() < deadline, "the other worker never claimed its database"
        time.sleep(0.02)
"""
    kept.makepyfile(test_x=together.replace("{n}", "x"), test_y=together.replace("{n}", "y"))
    monkeypatch.setenv("OUT", str(kept.path / "together"))
    kept.runpytest_subprocess("-p", "no:randomly", "-n", "2").assert_outcomes(passed=2)
    after_two = _settled(kept, lambda names: not runs(names) and len(spares(names)) == 2)
    assert not runs(after_two) and len(spares(after_two)) == 2, after_two
    assert not set(spares(after_one)) & set(spares(after_two)), "the spare was not handed to the second run"


def test_a_killed_runs_database_is_dropped_by_the_keeper(kept: pytest.Pytester,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    kept.makepyfile(test_hang="""
import os, time
from pathlib import Path

def test_hang(db, postgres):
    db.execute("insert into items (name) values ('a')")
    Path(os.environ["OUT"]).write_text(db.info.dbname)
    time.sleep(120)
""")
    name = _killed_after_it_wrote(kept, monkeypatch, "name", check=lambda name: name in _kept_databases(kept))
    assert name not in _settled(kept, lambda names: name not in names)


def test_a_claim_the_keeper_cannot_serve_names_why(kept: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    import os

    from testbed.errors import ConfigError, ServerStartError
    from testbed.runners.keeper import claim

    _run(kept, monkeypatch, "a")
    (record,) = [p for p in (Path(os.environ["TESTBED_RUNS_DIR"]) / "kept").glob("*.json")
                 if not p.name.endswith(".request.json")]
    data = json.loads(record.read_text())
    keeper = {"socket": data["socket"], "token": data["token"]}
    with pytest.raises(ServerStartError, match=r"\[keeper\].*testbed_tpl_gone.*does not exist"):
        claim(keeper, "testbed_tpl_gone", "testbed_rdeadbeef_main")
    with pytest.raises(ConfigError, match="refusing database name 'postgres'"):
        claim(keeper, "testbed_template", "postgres")  # only testbed's own names, never a user's database
    with pytest.raises(ServerStartError, match="did not hand out"):
        claim({**keeper, "socket": data["socket"] + ".gone"}, "testbed_template", "testbed_rdeadbeef_main")
    assert "testbed_rdeadbeef_main" not in _kept_databases(kept)


def test_a_kept_servers_tests_get_their_transcript(kept: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # The keeper turns the statement log on for the database it hands out (the run opens no connection of
    # its own for it): a failing test on a kept server shows what it ran and what it wrote.
    kept.makepyfile(test_x="""
def test_x(db):
    db.execute("insert into items (name) values ('kept')")
    assert False
""")
    for _ in range(2):  # the first run starts the keeper, the second adopts it and gets a spare
        result = kept.runpytest_subprocess("-p", "no:randomly")
        result.assert_outcomes(failed=1)
        out = result.stdout.str()
        assert "testbed transcript" in out and "insert into items (name) values ('kept')" in out, out
        assert "testbed.instance" not in out, "testbed's own checks are billed to the test"
