"""One lifecycle for every local server: reap, discover and pin, stage, run folder, data cache, spawn with
port retry, readiness, log tail, stop, record.

An engine subclasses :class:`ManagedServer` and fills in what is specific to it: the command line, the
readiness probe, how an empty data folder is made (``initdb``) and what a first boot adds to it (the
migrated template). Everything else, including the guarantees (an unprivileged user when root, a
parent-death signal, a run record for the next run to reap, loopback ports picked again when one was
taken meanwhile), is here once.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

from testbed.config import ServiceSettings
from testbed.errors import ServerStartError
from testbed.runners.binaries import Candidate
from testbed.runners.data_cache import DataDirCache
from testbed.runners.ports import LOOPBACK, ensure_port_free, free_port
from testbed.runners.process import LocalProcess
from testbed.runners.reaper import current_record, process_start_time, reap_stale_runs
from testbed.runners.users import RunAs, chown_tree, runnable_path, server_identity
from testbed.runners.workspace import DataLocation, data_location, new_run_dir

if TYPE_CHECKING:
    from testbed.engines.base import Engine


class ManagedServer:
    """A server process this run starts, owns and stops (subclassed per engine)."""

    engine_name: ClassVar[str]  # the registry's name of the engine
    run_prefix: ClassVar[str]  # run folder name: testbed-<prefix>-xxxx
    log_name: ClassVar[str] = "server.log"
    stop_signal: ClassVar[int] = signal.SIGTERM
    death_signal: ClassVar[int] = signal.SIGKILL
    poll_interval: ClassVar[float] = 0.005
    # Text of the server's log that says its port was taken between our probe and its bind.
    port_taken: ClassVar[tuple[str, ...]] = ("address already in use",)
    # Set by engines whose data folder is cached per binary (and per migrations): the folder layout key.
    cache_layout: ClassVar[str | None] = None
    max_cached: ClassVar[int] = 8

    def __init__(self, settings: ServiceSettings, *, workers: tuple[str | None, ...] = (None,),
                 content_key: str = "empty", build: Callable[[Any], None] | None = None) -> None:
        self.settings = settings
        self.workers = workers
        self.content_key = content_key
        self.build = build  # fills a fresh server's data when the cache has none for content_key
        self.binary: Candidate | None = None
        self.run_as: RunAs | None = None
        self.location: DataLocation | None = None
        self.run_dir: Path | None = None
        self.data_dir: Path | None = None
        self.port = 0
        self.password = ""
        self.process: LocalProcess | None = None
        self.cache_hit = False
        self.timings: dict[str, float] = {}

    @property
    def engine(self) -> Engine:
        from testbed import engines

        return engines.get(self.engine_name)

    # -- the lifecycle -----------------------------------------------------------------------------
    def start(self) -> Self:
        """Start the server and wait until it answers; on failure nothing is left running."""
        t0 = time.perf_counter()
        try:
            reap_stale_runs()
            self.binary = self.stage(self.engine.choose_binary(self.settings))
            self.location = data_location(self.settings.data_dir)
            self.run_dir = new_run_dir(self.location, self.run_prefix)
            current_record().add_path(self.run_dir)
            self.data_dir = self.run_dir / "data"
            self.password = self.new_password()
            self.prepare()
            if self.layout() is None:
                self.spawn()
            else:
                self._start_from_cache(t0)
            self.after_ready()
        except BaseException:
            self.stop()
            raise
        self.timings["start_ms"] = (time.perf_counter() - t0) * 1000
        return self

    def _start_from_cache(self, t0: float) -> None:
        assert self.binary is not None and self.data_dir is not None and self.run_dir is not None
        cache = DataDirCache(self.engine.name, self.binary, self.run_as, str(self.layout()), self.max_cached)
        if self.build is None and not cache.has(self.content_key):
            self.content_key = "empty"  # nothing here can build that content: start from the base instead
        if cache.has(self.content_key):
            self.cache_hit = True
            cache.copy_out(self.content_key, self.data_dir, self.run_as)
            self.timings["copy_ms"] = (time.perf_counter() - t0) * 1000
            self.spawn()
            return
        scratch = self.run_dir / "scratch"
        scratch.mkdir(mode=0o755)
        chown_tree(str(scratch), self.run_as)
        base = cache.ensure_base(lambda target: self.make_data_dir(target, scratch), scratch)
        shutil.rmtree(scratch, ignore_errors=True)
        cache.copy_base_out(base, self.data_dir, self.run_as)
        self.spawn(building=True)
        self.populate()
        if self.build is not None:
            self.build(self)
        self.finish_build()
        self.halt()
        cache.publish(self.data_dir, self.content_key)
        self.spawn()

    def stage(self, binary: Candidate) -> Candidate:
        """The binary, or a copy the server user can run (a private folder such as a venv under /root)."""
        import dataclasses

        self.run_as = server_identity()
        path = runnable_path(binary.path, self.install_tree(binary), self.run_as, boundary=self.engine.name)
        return binary if path == binary.path else dataclasses.replace(binary, path=path)

    def spawn(self, building: bool = False) -> None:
        """Start the process and wait until it is ready; a dynamic port taken meanwhile is picked again."""
        assert self.run_dir is not None
        fixed = self.settings.port
        if fixed:
            ensure_port_free(fixed, service=self.engine.name)
        for attempt in range(3):
            self.port = fixed or free_port()
            self.before_spawn(building)
            argv, env = self.command(building)
            self.process = LocalProcess(
                self.engine.name, argv, log_path=self.run_dir / self.log_name, env=env, cwd=self.run_dir,
                run_as=self.run_as, stop_signal=self.stop_signal, death_signal=self.death_signal,
                boundary=self.process_name(),
            ).start()
            try:
                timeout = max(self.settings.startup_timeout, self.min_startup_timeout())
                self.process.wait_ready(self.ready, timeout=timeout, interval=self.poll_interval)
                self.on_spawned()
                return
            except ServerStartError:
                self.after_failed_spawn()
                taken = any(m in self.process.tail(60).lower() for m in self.port_taken)
                if fixed or attempt == 2 or not taken:
                    raise

    def halt(self) -> None:
        """Stop the process (the run folder stays: a cold start publishes it to the cache)."""
        if self.process is not None:
            self.process.stop()

    def stop(self) -> None:
        """Stop the server and delete its folder."""
        self.halt()
        if self.run_dir is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            current_record().remove_path(self.run_dir)
            self.run_dir = None

    def check_alive(self, what: str = "the test") -> None:
        """Raise ServerDiedError with the log tail if the server process has exited."""
        # A SIGKILLed server is a zombie until all its threads are gone; /proc says so before waitpid can.
        if self.process is not None and (not self.process.alive() or process_start_time(self.process.pid) is None):
            raise self.process.died_error(f"{self.engine.label} is gone ({what})")

    def log_tail(self, lines: int = 25) -> str:
        return self.process.tail(lines) if self.process else ""

    @property
    def version(self) -> str:
        return self.binary.version if self.binary else ""

    def base_endpoint_fields(self) -> dict[str, Any]:
        """The Endpoint fields every engine has, for the engine's endpoint()."""
        assert self.binary is not None and self.process is not None
        return {"host": LOOPBACK, "port": self.port, "version": self.binary.version, "binary": self.binary.path,
                "source": self.binary.source, "pid": self.process.pid,
                "start_time": process_start_time(self.process.pid), "log_path": str(self.process.log_path)}

    def describe(self) -> Mapping[str, str]:
        """What `testbed up` / `doctor` / the terminal summary print about this server."""
        assert self.binary is not None and self.location is not None
        info = {"engine": self.engine.label, "version": self.binary.version, "binary": self.binary.path,
                "source": self.binary.source, "url": self.endpoint().url,
                "data": f"{self.run_dir} ({self.location.kind})"}
        if self.layout() is not None:
            info["cache"] = "hit" if self.cache_hit else "built"
        return info

    # -- what an engine fills in -------------------------------------------------------------------
    def layout(self) -> str | None:
        """The data cache's layout key (None: no data cache); part of the cache folder's name."""
        return self.cache_layout

    def install_tree(self, binary: Candidate) -> str:
        """The folder to copy when the binary must be staged (what it finds relative to itself)."""
        return os.path.dirname(os.path.realpath(binary.path))

    def new_password(self) -> str:
        return secrets.token_urlsafe(18)

    def process_name(self) -> str:
        """How errors name the server (their boundary): the engine's name unless the binary says more."""
        return self.engine.name

    def prepare(self) -> None:
        """Folders and files the server needs before its first spawn (run folder exists)."""

    def min_startup_timeout(self) -> float:
        return 0.0

    def before_spawn(self, building: bool) -> None:
        """Each spawn attempt, after the port is chosen: write config files, start helpers."""

    def after_failed_spawn(self) -> None:
        """Each failed spawn attempt: stop helpers started by before_spawn."""

    def command(self, building: bool) -> tuple[list[str], Mapping[str, str] | None]:
        """The server's argv and environment (None: inherit)."""
        raise NotImplementedError

    def ready(self) -> bool:
        """True once the server answers a real request (exceptions count as not yet)."""
        raise NotImplementedError

    def on_spawned(self) -> None:
        """After each spawn is ready (a cold start spawns twice): per-spawn state such as the TCP password."""

    def make_data_dir(self, target: Path, scratch: Path) -> None:
        """Create an empty data folder at ``target`` (initdb); ``scratch`` is a folder for logs."""
        target.mkdir(mode=0o700)
        chown_tree(str(target), self.run_as)

    def populate(self) -> None:
        """On a cold start, before ``build``: what every cached data folder holds (a template database)."""

    def finish_build(self) -> None:
        """On a cold start, after ``build``: make the data consistent for the cache (a checkpoint)."""

    def after_ready(self) -> None:
        """Once the server runs for the session: per-run secrets (a password), records."""

    def endpoint(self) -> Any:
        raise NotImplementedError
