"""The unit-stage guard: a unit test that reaches for the network, a database or a server process fails
at that call, with the call site and how to move the test to the integration stage.

Three nets, because no single one sees everything:

- Python's audit hooks see every ``socket.connect`` (TCP and UDP on any host, loopback included, and
  Unix sockets) and every process spawn (``subprocess``, ``os.system``, ``os.posix_spawn``, ``os.exec*``);
  a spawn is refused only when it starts a server binary. ``socket.socketpair()`` never connects, so the
  self-pipe asyncio's event loop makes for itself stays allowed.
- Drivers that connect in C, beneath Python's socket module (psycopg and psycopg2 through libpq), are
  refused at their Python entry points; pure-Python drivers (asyncpg, PyMySQL, redis-py) are refused there
  too, so the message names the driver. Modules imported later, even inside the test, are patched as they
  load.
- testbed's own service fixtures are refused before the test starts (``is_service_fixture``).

The wrappers and the audit hook stay installed for the rest of the process once a guarded test ran (an
audit hook cannot be removed) and do nothing unless a guarded test is running in this thread or in a
thread it started: servers and pools that integration tests left running keep working in their own
threads. The error is not an ``OSError``, so retry loops do not swallow it as a network blip; code that
swallows it anyway does not hide it either: the plugin fails the test for every refusal it recorded.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import inspect
import os
import re
import shlex
import socket
import sys
import sysconfig
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

from testbed.errors import TestbedError
from testbed.hygiene.stages import Stage


class UnitStageError(TestbedError):
    """A unit-stage test tried to use the network, a database or a server process."""

    boundary = "unit stage"


# Server programs a unit test must not start: every engine's (from the registry) and these, which no
# engine of testbed's runs but a test might (a container runtime, other stores).
OTHER_SERVER_PROGRAMS = frozenset({"pg_ctlcluster", "mysqld_safe", "mariadbd-safe", "valkey-server", "memcached",
                                   "mongod", "minio", "docker", "podman", "dockerd"})


class _ServerPrograms:
    """The registry's programs, read on first use (from its entries: no engine module is imported)."""

    _names: frozenset[str] | None = None

    def __contains__(self, name: object) -> bool:
        if self._names is None:
            from testbed import engines

            found = set(OTHER_SERVER_PROGRAMS)
            for engine in engines.names():  # built-in entries: no engine module is imported
                found.update(engines.entry(engine).programs)
            self._names = frozenset(found)
        return name in self._names


SERVER_BINARIES = _ServerPrograms()
# Programs that run another program given as a later argument (sudo -u x pg_ctl ...).
_LAUNCHERS = frozenset({"sudo", "env", "nice", "nohup", "setsid", "timeout", "runuser", "exec", "stdbuf",
                        "ionice", "chrt", "taskset", "su", "doas"})
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh"})

# testbed's fixtures that start or use a server: the plugin's, including each registry engine's
# (plugin/services.py makes them in "testbed.plugin.services").
SERVICE_FIXTURE_MODULES = ("testbed.plugin",)
NOT_SERVICE_FIXTURES = frozenset({"testbed_settings"})


def is_service_fixture(fixturedef: Any) -> bool:
    """Whether a pytest fixture definition is one of testbed's fixtures that start or use a server."""
    module = getattr(getattr(fixturedef, "func", None), "__module__", "") or ""
    ours = any(module == m or module.startswith(m + ".") for m in SERVICE_FIXTURE_MODULES)
    return ours and getattr(fixturedef, "argname", "") not in NOT_SERVICE_FIXTURES


def server_binary_in(command: Any) -> str | None:
    """The server program a command line starts (through sudo/env/sh -c too), or None."""
    if isinstance(command, (str, bytes, os.PathLike)):
        text = os.fsdecode(command)
        try:
            words: list[str] = shlex.split(text)
        except ValueError:
            words = text.split()
    elif isinstance(command, (list, tuple)):
        words = [os.fsdecode(w) for w in command if isinstance(w, (str, bytes, os.PathLike))]
    else:
        return None
    i = 0
    while i < len(words):
        name = os.path.basename(words[i])
        if name in SERVER_BINARIES:
            return name
        if name in _SHELLS:
            if "-c" in words[i + 1:]:
                script = words[words.index("-c", i + 1) + 1:]
                for part in re.split(r"[;&|]+", " ".join(script)):
                    found = server_binary_in(part)
                    if found:
                        return found
            return None
        if name in _LAUNCHERS:
            i += 1
            # skip the launcher's options and VAR=value assignments; `sudo -u user cmd` has an option value
            while i < len(words) and (words[i].startswith("-") or re.match(r"[A-Za-z_]\w*=", words[i])):
                if words[i] in ("-u", "-g", "-n", "-s", "-k", "-c") and name in ("sudo", "runuser", "su", "timeout"):
                    i += 1
                i += 1
            if name == "timeout" and i < len(words) and re.fullmatch(r"[\d.]+[smhd]?", words[i]):
                i += 1
            continue
        return None
    return None


# -- the running guard ----------------------------------------------------------------------------------


@dataclass
class Activation:
    """One guarded test: who it is, which threads are its own, and what it was refused."""

    nodeid: str
    stage: Stage
    test_file: str
    root: Path
    how_to_move: str
    thread: threading.Thread = field(default_factory=threading.current_thread)
    # Threads that ran before the test started belong to the session (servers, pools): never refused.
    exempt: frozenset[threading.Thread] = field(default_factory=lambda: frozenset(threading.enumerate()))
    violations: list[str] = field(default_factory=list)

    def refuses_this_thread(self) -> bool:
        current = threading.current_thread()
        return current is self.thread or current not in self.exempt

    def message(self, what: str, site: str) -> str:
        return (
            f"{self.nodeid} {what}\n"
            f"  at {site}\n"
            f"This test is in the unit stage because {self.stage.reason}; unit-stage tests run without network "
            "connections, database connections or server processes.\n"
            f"{self.how_to_move} Or give the code under test a fake at this boundary."
        )


_active: Activation | None = None


@contextmanager
def guarding(activation: Activation) -> Iterator[Activation]:
    """Refuse I/O for the duration of the block (one phase of one test)."""
    global _active
    install()
    previous, _active = _active, activation
    try:
        yield activation
    finally:
        _active = previous


def refuse(what: str) -> None:
    """Raise UnitStageError (and record it) if a guarded test is running in this thread."""
    __tracebackhide__ = True
    activation = _active
    if activation is None or not activation.refuses_this_thread():
        return
    message = activation.message(what, call_site(activation))
    activation.violations.append(message)
    raise UnitStageError(message)


_LIBRARY_DIRS: tuple[str, ...] | None = None


def _library_dirs() -> tuple[str, ...]:
    global _LIBRARY_DIRS
    if _LIBRARY_DIRS is None:
        paths = sysconfig.get_paths()
        dirs = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
        dirs.add(str(Path(__file__).resolve().parent.parent))  # testbed itself
        _LIBRARY_DIRS = tuple(sorted(os.path.realpath(d) + os.sep for d in dirs))
    return _LIBRARY_DIRS


def _where(frame: FrameType, root: Path) -> str:
    filename = frame.f_code.co_filename
    try:
        shown = Path(filename).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        shown = filename
    return f"{shown}:{frame.f_lineno} in {frame.f_code.co_name}"


def call_site(activation: Activation) -> str:
    """Where the refused call came from: the innermost frame of the project's own code, and the test line."""
    libraries = _library_dirs()
    code_frame: FrameType | None = None
    test_frame: FrameType | None = None
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if code_frame is None and not filename.startswith("<"):
            real = os.path.realpath(filename)
            if not real.startswith(libraries):
                code_frame = frame
        if filename == activation.test_file:
            test_frame = frame
            break
        frame = frame.f_back
    if code_frame is None and test_frame is None:
        return "(no frame of the project's code on the stack; a library did it on the test's behalf)"
    if code_frame is None or code_frame is test_frame:
        assert test_frame is not None
        return _where(test_frame, activation.root)
    site = _where(code_frame, activation.root)
    if test_frame is not None:
        site += f", called from {_where(test_frame, activation.root)}"
    return site


# -- net 1: audit hooks (sockets, processes) ------------------------------------------------------------

_GUARDED_FAMILIES = {socket.AF_INET, socket.AF_INET6, getattr(socket, "AF_UNIX", -1)}
_SPAWN_EVENTS = {"subprocess.Popen": 1, "os.posix_spawn": 1, "os.exec": 1, "os.spawn": 2, "os.system": 0}


def _address(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    if isinstance(address, (bytes, bytearray)):
        return repr(bytes(address))
    return f"the Unix socket {address}"


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _active is None:
        return
    __tracebackhide__ = True
    if event == "socket.connect":
        sock, address = args[0], args[1]
        if getattr(sock, "family", None) in _GUARDED_FAMILIES and _active.refuses_this_thread():
            kind = "a network connection" if sock.family != getattr(socket, "AF_UNIX", -1) else "a connection"
            # Close the socket we refuse: the caller's cleanup only runs for OSError, and a leaked socket
            # would add a ResourceWarning to the real error.
            sock.close()
            refuse(f"opened {kind} to {_address(address)} (socket.connect)")
    elif event in _SPAWN_EVENTS:
        command = args[_SPAWN_EVENTS[event]]
        if event == "subprocess.Popen" and args[0]:
            command = [args[0], *(command if isinstance(command, (list, tuple)) else [command])]
        server = server_binary_in(command)
        if server:
            refuse(f"started the server program {server!r} ({event})")


# -- net 2: driver entry points -------------------------------------------------------------------------


def _conninfo_target(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """host:port/dbname from a libpq conninfo string or URL (never the password)."""
    text = next((a for a in (*args, *kwargs.values()) if isinstance(a, str)), "")
    found: dict[str, str] = {}
    url = re.match(r"^\w+(?:\+\w+)?://(?:[^@/]*@)?([^/?:]*)(?::(\d+))?(?:/([^?]*))?", text)
    if url:
        found = {"host": url.group(1) or "", "port": url.group(2) or "", "dbname": url.group(3) or ""}
    else:
        for key, value in re.findall(r"(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", text):
            found[key] = value.strip("'")
    for key in ("host", "port", "dbname", "database"):
        if key in kwargs and kwargs[key] is not None:
            found[key] = str(kwargs[key])
    host = found.get("host") or found.get("hostaddr") or "the default socket"
    port = f":{found['port']}" if found.get("port") else ""
    db = found.get("dbname") or found.get("database")
    return f"{host}{port}" + (f"/{db}" if db else "")


def _self_target(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """host:port (or socket path) of a driver connection object, from its attributes."""
    conn = args[0] if args else None
    path = getattr(conn, "path", None) or getattr(conn, "unix_socket", None)
    if path:
        return f"the Unix socket {path}"
    return f"{getattr(conn, 'host', '?')}:{getattr(conn, 'port', '?')}"


@dataclass(frozen=True)
class DriverEntry:
    """A driver function through which connections are opened."""

    module: str
    qualname: str
    what: str
    target: Callable[[tuple[Any, ...], dict[str, Any]], str]


DRIVER_ENTRIES = (
    # psycopg 3: every sync, async and pool connection goes through this classmethod, including
    # `from psycopg import connect` imported before the guard existed.
    DriverEntry("psycopg._connection_base", "BaseConnection._connect_gen",
                "opened a PostgreSQL connection through psycopg (libpq)", lambda a, k: _conninfo_target(a[1:], k)),
    DriverEntry("psycopg2", "_connect", "opened a PostgreSQL connection through psycopg2 (libpq)",
                _conninfo_target),
    DriverEntry("asyncpg", "connect", "opened a PostgreSQL connection through asyncpg", _conninfo_target),
    DriverEntry("asyncpg.connection", "connect", "opened a PostgreSQL connection through asyncpg",
                _conninfo_target),
    DriverEntry("pymysql.connections", "Connection.connect", "opened a MySQL connection through PyMySQL",
                _self_target),
    DriverEntry("redis.connection", "AbstractConnection.connect", "opened a Redis connection through redis-py",
                _self_target),
)
_ENTRY_MODULES = frozenset(e.module for e in DRIVER_ENTRIES)
# Marks the wrappers of this copy of the module: pytester's inline runs import a second copy, whose
# wrappers (checking that copy's state) must not stop this one from wrapping on top.
_TOKEN = object()


def _wrap(func: Callable[..., Any], entry: DriverEntry) -> Callable[..., Any]:
    def check(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        __tracebackhide__ = True
        if _active is not None:
            try:
                target = entry.target(args, kwargs)
            except Exception:  # describing the target must never turn into a different error
                target = "?"
            refuse(f"{entry.what} to {target}")

    if inspect.iscoroutinefunction(func):
        @functools.wraps(func)
        async def guarded_async(*args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True
            check(args, kwargs)
            return await func(*args, **kwargs)

        wrapper: Callable[..., Any] = guarded_async
    else:
        @functools.wraps(func)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True
            check(args, kwargs)
            return func(*args, **kwargs)

        wrapper = guarded
    wrapper.__testbed_guard__ = _TOKEN  # type: ignore[attr-defined]
    return wrapper


def _patch_module(module: ModuleType) -> None:
    for entry in DRIVER_ENTRIES:
        if entry.module != module.__name__:
            continue
        *owner_path, name = entry.qualname.split(".")
        owner: Any = module
        for part in owner_path:
            owner = getattr(owner, part, None)
            if owner is None:
                break
        if owner is None:
            continue
        raw = vars(owner).get(name) if isinstance(owner, type) else getattr(owner, name, None)
        if raw is None:
            continue
        if isinstance(raw, classmethod):
            if getattr(raw.__func__, "__testbed_guard__", None) is not _TOKEN:
                setattr(owner, name, classmethod(_wrap(raw.__func__, entry)))
        elif callable(raw) and getattr(raw, "__testbed_guard__", None) is not _TOKEN:
            setattr(owner, name, _wrap(raw, entry))


class _PatchOnImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Patches a driver module right after it is executed, whenever it is first imported."""

    def __init__(self) -> None:
        self._finding = threading.local()

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _ENTRY_MODULES or getattr(self._finding, "busy", False):
            return None
        self._finding.busy = True
        try:
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    break
            else:
                return None
        finally:
            self._finding.busy = False
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _PatchingLoader(spec.loader)
        return spec


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        result: ModuleType | None = self._loader.create_module(spec)
        return result

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        module.__spec__.loader = self._loader  # type: ignore[union-attr]
        _patch_module(module)

    def __getattr__(self, name: str) -> Any:  # get_resource_reader, is_package, get_source...
        return getattr(self._loader, name)


_installed = False


def install() -> None:
    """Install the audit hook, the driver wrappers and the import patcher (once per process)."""
    global _installed
    if _installed:
        return
    _installed = True
    sys.addaudithook(_audit)
    for name in _ENTRY_MODULES:
        module = sys.modules.get(name)
        if module is not None:
            _patch_module(module)
    sys.meta_path.insert(0, _PatchOnImport())
