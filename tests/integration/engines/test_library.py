"""The library without pytest: one shape for every engine, as the README shows it."""

from __future__ import annotations

import psycopg
import pytest

import testbed


def test_every_engine_is_a_context_manager_with_a_url() -> None:
    with testbed.redis() as r, testbed.nats() as n:
        import redis as redis_py

        with redis_py.Redis.from_url(r.url) as client:
            assert client.ping()
        assert n.url.startswith("nats://") and n.version and n.binary
        assert r.endpoint.url == r.url


def test_postgres_url_is_a_migrated_database(tmp_path: pytest.TempPathFactory) -> None:
    with testbed.postgres() as pg, psycopg.connect(pg.url) as conn:
        assert conn.execute("select count(*) from testbed.instance").fetchone() == (1,)
        assert pg.sqlalchemy_url.startswith("postgresql+psycopg://")


def test_the_readme_subpackage_spelling_works() -> None:
    import subprocess
    import sys

    code = "import testbed\nwith testbed.services.redis.running() as r:\n    print(r.endpoint().url)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("redis://")


def test_library_options_are_validated_like_the_config() -> None:
    with pytest.raises(testbed.TestbedError, match="port = -1 is out of range"), testbed.redis(port=-1):
        pass
