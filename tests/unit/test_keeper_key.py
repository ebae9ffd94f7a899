"""Which kept server a run may adopt (runners/keeper.server_key)."""

from __future__ import annotations

import pytest

from testbed.engines.settings import PostgresSettings
from testbed.runners.keeper import server_key


def test_the_key_is_the_server_not_the_run() -> None:
    s = PostgresSettings(engine="postgres")
    binary = "/usr/lib/postgresql/15/bin/postgres 15.19"
    assert server_key("postgres", s, binary) == server_key("postgres", s, binary)
    # per-run settings (migrations, isolation) share one server: each run builds its template on it
    assert server_key("postgres", PostgresSettings(engine="postgres", migrations="m/", isolation="clone"),
                      binary) == server_key("postgres", s, binary)


def test_another_binary_or_server_setting_is_another_server() -> None:
    s = PostgresSettings(engine="postgres")
    key = server_key("postgres", s, "/usr/lib/postgresql/15/bin/postgres 15.19")
    assert server_key("postgres", s, "/usr/lib/postgresql/16/bin/postgres 16.4") != key  # a new one on PATH
    assert server_key("postgres", s, "/usr/lib/postgresql/15/bin/postgres 15.20") != key  # upgraded in place
    assert server_key("postgres", PostgresSettings(engine="postgres", options={"work_mem": "64MB"}),
                      "/usr/lib/postgresql/15/bin/postgres 15.19") != key


def test_a_keeper_of_another_protocol_is_another_server(monkeypatch: pytest.MonkeyPatch) -> None:
    # A development checkout keeps its version string across changes of what runs ask keepers: a run must not
    # adopt a keeper that would not understand it (an older one refuses database claims).
    from testbed.runners import keeper

    s = PostgresSettings(engine="postgres")
    key = server_key("postgres", s, "/usr/lib/postgresql/15/bin/postgres 15.19")
    monkeypatch.setattr(keeper, "PROTOCOL", keeper.PROTOCOL + 1)
    assert server_key("postgres", s, "/usr/lib/postgresql/15/bin/postgres 15.19") != key
