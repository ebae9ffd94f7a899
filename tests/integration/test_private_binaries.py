"""A server binary in a folder the unprivileged server user cannot enter (a virtualenv under /root) is
run from a world-readable copy of its install tree, when testbed runs as root."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import psycopg
import pytest

from testbed.config import ServiceSettings
from testbed.provision import start_postgres
from testbed.services import nats as nats_service
from testbed.services import postgres as pg_service

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="only root drops privileges for servers")


def _private_copy(tmp_path: Path, tree: Path) -> Path:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    os.chmod(private, 0o700)  # like /root: nobody else may enter
    shutil.copytree(tree, private / tree.name, symlinks=True)
    return private / tree.name


def test_postgres_from_a_private_install_tree(tmp_path: Path) -> None:
    real = Path(os.path.realpath(pg_service.choose_binary(ServiceSettings(engine="postgres")).path))
    tree = _private_copy(tmp_path, real.parent.parent)
    settings = ServiceSettings(engine="postgres", binary=str(tree / "bin"))
    server = start_postgres(settings, tmp_path)
    try:
        assert server.binary is not None and not server.binary.path.startswith(str(tmp_path))
        with psycopg.connect(server.url()) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
    finally:
        server.stop()
        if server.binary is not None:
            _remove_staged(server.binary.path)


def _remove_staged(path: str) -> None:
    # <tmp>/testbed-bin-<uid>/<key>/...: this test's private tree is unique, so is its staged copy.
    parts = Path(path).parts
    for i, part in enumerate(parts):
        if part.startswith("testbed-bin-"):
            shutil.rmtree(Path(*parts[: i + 2]), ignore_errors=True)
            return


def test_nats_from_a_private_folder(tmp_path: Path) -> None:
    real = Path(os.path.realpath(nats_service.choose_binary(ServiceSettings(engine="nats")).path))
    folder = _private_copy(tmp_path, real.parent) if real.parent != Path("/usr/sbin") else None
    if folder is None:
        folder = tmp_path / "private" / "bin"
        folder.parent.mkdir(mode=0o700)
        folder.mkdir()
        shutil.copy2(real, folder / real.name)
    settings = ServiceSettings(engine="nats", binary=str(folder / real.name))
    with nats_service.running(settings) as server:
        staged = server.endpoint().binary
        assert not staged.startswith(str(tmp_path))
    _remove_staged(staged)


def test_pgserver_wheel_in_a_private_virtualenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pip-bundled PostgreSQL loads libpq from the wheel's pgserver.libs, beside its install tree."""
    bindir = pg_service.pgserver_bin_dir()
    assert bindir is not None, "the pgserver wheel is part of pytest-testbed[all], which make test installs"
    site = bindir.parents[2]  # .../site-packages/pgserver/pginstall/bin
    private = tmp_path / "private" / "site-packages"
    private.parent.mkdir(mode=0o700)
    os.chmod(private.parent, 0o700)
    for name in ("pgserver", "pgserver.libs"):
        shutil.copytree(site / name, private / name, symlinks=True)
    monkeypatch.setenv("TESTBED_CACHE_DIR", str(tmp_path / "cache"))  # a cold cache: initdb must run
    settings = ServiceSettings(engine="postgres", binary=str(private / "pgserver" / "pginstall" / "bin"))
    server = start_postgres(settings, tmp_path)
    try:
        assert server.binary is not None and not server.binary.path.startswith(str(tmp_path))
        with psycopg.connect(server.url()) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
    finally:
        server.stop()
        if server.binary is not None:
            _remove_staged(server.binary.path)


def test_a_server_without_libxml_runs_tests_with_their_transcript(pytester: pytest.Pytester) -> None:
    # The pgserver wheel's PostgreSQL is built without libxml: the per-test transcript's bookkeeping must
    # not need it (query_to_xml failed every test of the demo there).
    bindir = pg_service.pgserver_bin_dir()
    assert bindir is not None, "the pgserver wheel is part of the dev install (pytest-testbed[pg])"
    (pytester.path / "migrations").mkdir()
    (pytester.path / "migrations" / "001.sql").write_text("CREATE TABLE items (id serial PRIMARY KEY, name text);\n")
    pytester.makepyprojecttoml(f'[tool.testbed.postgres]\nbinary = "{bindir}"\nmigrations = "migrations/"\n')
    pytester.makepyfile(test_items="""
import pytest

def test_rollback(db):
    db.execute("insert into items (name) values ('a')")

@pytest.mark.testbed(isolation="truncate")
def test_truncate(db):
    db.execute("insert into items (name) values ('b')")
    db.commit()

def test_fails(db):
    db.execute("insert into items (name) values ('c')")
    assert False, "planted"
""")
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=1)
    assert "unsupported XML feature" not in result.stdout.str()
