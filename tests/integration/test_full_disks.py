"""A full or read-only cache or data folder is a clear error naming the folder, the room and the fix, and
leaves nothing partial behind. Small tmpfs mounts stand in for full disks (root only: CI runs as root)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from testbed.config import ServiceSettings
from testbed.errors import ConfigError, ServerStartError
from testbed.services.postgres import PostgresServer

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root (CI runs as root)")


@pytest.fixture
def mount_tmpfs(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    mounted: list[Path] = []

    def mount(name: str, size: str = "2M", readonly: bool = False) -> Path:
        target = tmp_path / name
        target.mkdir()
        options = f"size={size},mode=755" + (",ro" if readonly else "")
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], check=True)
        mounted.append(target)
        return target

    yield mount
    for target in reversed(mounted):
        subprocess.run(["umount", "-l", str(target)], check=False)


def test_a_full_cache_disk_names_the_folder_and_the_room(
    mount_tmpfs: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = mount_tmpfs("cache")
    monkeypatch.setenv("TESTBED_CACHE_DIR", str(cache))
    server = PostgresServer(ServiceSettings(engine="postgres"))
    try:
        with pytest.raises(ServerStartError) as caught:
            server.start()
    finally:
        server.stop()
    message = str(caught.value)
    assert "No space left on device" in message and "It needs about" in message and "MiB is free there" in message
    assert "TESTBED_CACHE_DIR" in message
    leftovers = [p for p in cache.rglob("*") if ".tmp-" in p.name]
    assert leftovers == [], leftovers


def test_a_read_only_cache_folder_is_a_config_error(
    mount_tmpfs: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TESTBED_CACHE_DIR", str(mount_tmpfs("ro", readonly=True)))
    server = PostgresServer(ServiceSettings(engine="postgres"))
    try:
        with pytest.raises(ConfigError, match=r"is not writable \(Read-only file system\).*TESTBED_CACHE_DIR"):
            server.start()
    finally:
        server.stop()


def test_a_full_data_folder_names_the_folder_and_how_to_move_it(mount_tmpfs: Callable[..., Path]) -> None:
    data = mount_tmpfs("data", size="3M")
    server = PostgresServer(ServiceSettings(engine="postgres", data_dir=str(data)))
    try:
        with pytest.raises(ServerStartError) as caught:
            server.start()
    finally:
        server.stop()
    message = str(caught.value)
    assert "No space left on device" in message and "data_dir" in message and "TESTBED_DATA_DIR" in message
    assert list(data.iterdir()) == [], "a partial data folder was left behind"


def test_a_data_dir_that_does_not_exist_is_a_config_error(tmp_path: Path) -> None:
    server = PostgresServer(ServiceSettings(engine="postgres", data_dir=str(tmp_path / "tmpfs2")))
    try:
        with pytest.raises(ConfigError, match="no such folder"):
            server.start()
    finally:
        server.stop()
    assert not (tmp_path / "tmpfs2").exists()
