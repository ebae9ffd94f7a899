"""Moved to :mod:`testbed.engines.postgres` (kept for one release)."""

from __future__ import annotations

from testbed.engines.postgres import (
    CACHE_FORMAT,
    ENGINE,
    INITDB_ARGS,
    SUPERUSER,
    SYSTEM_GLOBS,
    TEMPLATE_DB,
    TUNED,
    ExistingPostgres,
    PostgresEndpoint,
    PostgresServer,
    PostgresSettings,
    choose_binary,
    discover,
    install_hint,
    pgserver_bin_dir,
    running,
)

__all__ = ["CACHE_FORMAT", "ENGINE", "INITDB_ARGS", "SUPERUSER", "SYSTEM_GLOBS", "TEMPLATE_DB", "TUNED",
           "ExistingPostgres", "PostgresEndpoint", "PostgresServer", "PostgresSettings", "choose_binary", "discover",
           "install_hint", "pgserver_bin_dir", "running"]
