"""Servers kept between runs: the rerun loop of a developer pays a server start once, not per run.

A keeper is a small detached process that starts one server (the engine's own local start, so the same
binary, settings, user and run folder rules apply), and keeps it while runs lease it. A run leases it by
holding a connection to the keeper's unix socket open for its whole session; when the last lease ends
(cleanly, or because the run was killed and the kernel closed its socket) the keeper waits ``idle``
seconds and then stops the server and exits. ``testbed down`` stops keepers at once.

Runs agree on one keeper per key (engine, binary, server-shaping settings, user) under an exclusive file
lock, so two runs starting together never start two servers or adopt a half-started one. Records and
sockets live in the private run-records folder; a record is trusted only while its keeper process (pid
and start time) is alive and answers the token written in it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from testbed.errors import ServerStartError, TestbedError, from_wire, to_wire
from testbed.runners.ownership import private_folder
from testbed.runners.reaper import is_same_process, process_start_time, records_dir

# What runs and keepers say to each other: a run adopts only a keeper that speaks its version (2: claims of
# databases besides leases; 3: requests about a claimed database), even where testbed's version string did
# not change (a development checkout).
PROTOCOL = 3

# Settings that shape a run's databases or tests, not the server: runs differing only in these share one.
PER_RUN_KEYS = frozenset({"runner", "url", "migrations", "isolation", "seed_tables", "leak_check",
                          "migration_timeout", "async_driver", "startup_timeout"})


def kept_dir() -> Path:
    return private_folder(records_dir() / "kept", "kept servers")


def server_key(engine: str, settings: Any, binary: str = "") -> str:
    """Which kept server a run may adopt: same engine, binary (the one this run would start: path and
    version), server-shaping settings, user, testbed version and the way the engine starts its server."""
    from testbed import __version__, engines

    shaping = {k: v for k, v in sorted(dataclasses.asdict(settings).items()) if k not in PER_RUN_KEYS}
    shape = engines.get(engine).kept_shape if engine in engines.names() else ""
    ident = json.dumps({"engine": engine, "settings": shaping, "uid": os.geteuid(), "testbed": __version__,
                        "binary": binary, "shape": shape, "protocol": PROTOCOL}, sort_keys=True, default=str)
    return hashlib.sha256(ident.encode()).hexdigest()[:20]


class Lease:
    """A run's hold on a kept server: the open connection to its keeper (closed when the run ends)."""

    def __init__(self, sock: socket.socket, record: Mapping[str, Any]) -> None:
        self.sock = sock
        self.record = record

    @property
    def endpoint(self) -> dict[str, Any]:
        """The server's endpoint, with how its processes reach the keeper (engines that hand out databases)."""
        return {**self.record["endpoint"], "keeper": {"socket": self.record["socket"], "token": self.record["token"]},
                "kept_info": self.record.get("info", {})}

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


@contextlib.contextmanager
def _reachable(path: str) -> Iterator[str]:
    """A name for unix socket ``path`` that fits in sun_path (107 bytes): the path itself when short, else
    the socket's name under /proc/self/fd/N of its folder, open meanwhile (a deep TESTBED_RUNS_DIR, or a
    pytest tmp_path, would otherwise fail every bind and connect with "AF_UNIX path too long")."""
    if len(os.fsencode(path)) < 100:
        yield path
        return
    fd = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{os.path.basename(path)}"
    finally:
        os.close(fd)


def claim(keeper: Mapping[str, Any], template: str, name: str, timeout: float = 120.0) -> socket.socket:
    """Database ``name``, a copy of ``template``, on a kept server, from its keeper (a spare it copied while
    the server was idle, renamed, when it has one: no copy while the run waits). The database is the
    caller's until it closes the returned socket (or dies): then the keeper drops it and its clones."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        with _reachable(str(keeper["socket"])) as where:
            sock.connect(where)
        sock.sendall(json.dumps({"op": "claim", "token": keeper["token"], "template": template,
                                 "name": name}).encode() + b"\n")
        answer = json.loads(sock.makefile("rb").readline() or b"{}")
        sock.settimeout(None)
    except (OSError, ValueError) as exc:
        sock.close()
        raise ServerStartError(f"the keeper of the kept server did not hand out database {name!r}: {exc}. "
                               "`testbed down` stops kept servers; --testbed-no-reuse starts one per run.",
                               boundary="keeper") from None
    try:
        _checked_answer(answer, f"the keeper refused database {name!r} (it is stopping). Run again.")
    except TestbedError:
        sock.close()
        raise
    return sock


def _checked_answer(answer: dict[str, Any], silent: str) -> dict[str, Any]:
    """A keeper's answer, or the error it carries (``silent``: what to say when it carries none)."""
    if not answer.get("ok"):
        if "error" in answer:
            raise from_wire(answer["error"])
        raise ServerStartError(silent, boundary="keeper")
    return answer


def capture(sock: socket.socket) -> dict[str, Any]:
    """Ask the keeper to log every statement of the database claimed on ``sock``; what it says of the server
    (``xml``: whether it can count rows through query_to_xml)."""
    sock.sendall(json.dumps({"op": "capture"}).encode() + b"\n")
    answer: dict[str, Any] = json.loads(sock.makefile("rb").readline() or b"{}")
    return _checked_answer(answer, "the keeper did not answer a request about the claimed database")


def _read_record(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


def _lease(record: Mapping[str, Any], timeout: float = 10.0) -> Lease | None:
    """Lease the keeper a record names, if it is alive and answers; None otherwise."""
    if not is_same_process(int(record.get("pid", 0)), record.get("start")):
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        with _reachable(str(record["socket"])) as name:
            sock.connect(name)
        sock.sendall(json.dumps({"op": "lease", "token": record["token"]}).encode() + b"\n")
        answer = json.loads(sock.makefile("rb").readline() or b"{}")
        sock.settimeout(None)
    except (OSError, ValueError):
        sock.close()
        return None
    if not answer.get("ok"):
        sock.close()
        return None
    return Lease(sock, {**record, "endpoint": answer["endpoint"], "info": answer.get("info", {})})


def acquire(engine: str, settings: Any, content_key: str, idle: float, startup_timeout: float = 120.0,
            binary: str = "") -> Lease:
    """Lease the kept server for these settings and binary, starting a keeper for it when none is alive."""
    folder = kept_dir()
    key = server_key(engine, settings, binary)
    record_path = folder / f"{key}.json"
    with open(folder / f"{key}.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # runs starting together agree: one keeper, one server
        try:
            record = _read_record(record_path)
            if record is not None:
                lease = _lease(record)
                if lease is not None:
                    return lease
                record_path.unlink(missing_ok=True)  # its keeper is gone: start afresh
            return _start_keeper(folder, key, engine, settings, content_key, idle, startup_timeout)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _start_keeper(folder: Path, key: str, engine: str, settings: Any, content_key: str, idle: float,
                  startup_timeout: float) -> Lease:
    request = {"key": key, "engine": engine, "settings": dataclasses.asdict(settings), "content_key": content_key,
               "idle": idle, "socket": str(folder / f"{key}.sock"), "record": str(folder / f"{key}.json"),
               "token": secrets.token_hex(16)}
    request_path = folder / f"{key}.request.json"
    request_path.write_text(json.dumps(request, default=list))
    log = folder / f"{key}.log"
    with open(log, "ab") as out:
        launcher = subprocess.Popen([sys.executable, "-m", "testbed.runners.keeper", str(request_path)],
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True, close_fds=True,
                                    env={**os.environ, "PYTHONPATH": _pythonpath()})
    launcher.wait(30)  # the launcher forks the keeper and exits at once (no zombie under this run)
    deadline = time.monotonic() + startup_timeout
    record_path = folder / f"{key}.json"
    while time.monotonic() < deadline:
        record = _read_record(record_path)
        if record is not None and record.get("token") == request["token"]:
            if "error" in record:
                record_path.unlink(missing_ok=True)
                raise from_wire(record["error"])
            lease = _lease(record)
            if lease is not None:
                return lease
        time.sleep(0.01)
    from testbed.runners.process import log_tail

    raise ServerStartError(f"the keeper of a reusable {engine} server did not come up within {startup_timeout:.0f} s; "
                           f"its log ({log}) ends:\n{log_tail(log)}\nRun with --testbed-no-reuse to start servers "
                           "per run.", boundary=engine)


def _pythonpath() -> str:
    # The keeper imports testbed (and third-party engines) as this process does.
    return os.pathsep.join(p for p in sys.path if p)


def down() -> list[str]:
    """Stop every keeper of this user (``testbed down``); a line per server stopped."""
    stopped = []
    folder = kept_dir()
    for record_path in sorted(folder.glob("*.json")):
        if record_path.name.endswith(".request.json"):
            continue
        record = _read_record(record_path)
        if not record or "pid" not in record:
            continue
        pid, start = int(record["pid"]), record.get("start")
        if is_same_process(pid, start):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while is_same_process(pid, start) and time.monotonic() < deadline:
                time.sleep(0.02)
            stopped.append(f"stopped the kept {record.get('engine')} server (keeper pid {pid})")
        record_path.unlink(missing_ok=True)
    return stopped


# -- the keeper process ------------------------------------------------------------------------------------


class Keeper:
    """Owns one server; serves leases on a unix socket; stops the server after ``idle`` seconds unleased."""

    def __init__(self, request: Mapping[str, Any]) -> None:
        self.request = request
        self.leases = 0
        self.cond = threading.Condition()
        self.stopping = False
        self.endpoint: dict[str, Any] = {}
        self.running: Any = None

    def run(self) -> None:
        from testbed import engines

        signal.signal(signal.SIGTERM, lambda *_: self._stop())
        try:
            engine = engines.get(str(self.request["engine"]))
            settings = engine.settings_class(**_settings_fields(engine.settings_class, self.request["settings"]))
            running = self.running = engine.keep(settings, str(self.request["content_key"]))
        except TestbedError as exc:  # reported to the waiting run at once, not after its start-up timeout
            self._write_record({"error": to_wire(exc)})
            return
        except Exception as exc:
            self._write_record({"error": to_wire(ServerStartError(f"{type(exc).__name__}: {exc}",
                                                                  boundary=str(self.request["engine"])))})
            return
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.endpoint = running.endpoint().to_dict()
            Path(str(self.request["socket"])).unlink(missing_ok=True)
            with _reachable(str(self.request["socket"])) as name:
                listener.bind(name)
            listener.listen(64)
        except Exception as exc:  # the waiting run hears why at once, not after its start-up timeout
            listener.close()
            running.stop()
            self._write_record({"error": to_wire(ServerStartError(
                f"the keeper could not listen on {self.request['socket']}: {type(exc).__name__}: {exc}",
                boundary=str(self.request["engine"])))})
            return
        try:
            threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
            # What the server really holds: the run's migrated template, or "empty" when it was not cached.
            self._write_record({"endpoint": self.endpoint, "content_key": getattr(running, "content_key", "empty")})
            self._wait_idle(float(self.request["idle"]))
            listener.close()
        finally:
            Path(str(self.request["record"])).unlink(missing_ok=True)
            Path(str(self.request["socket"])).unlink(missing_ok=True)
            running.stop()

    def _write_record(self, extra: Mapping[str, Any]) -> None:
        record = {"key": self.request["key"], "engine": self.request["engine"], "pid": os.getpid(),
                  "start": process_start_time(os.getpid()), "socket": self.request["socket"],
                  "token": self.request["token"], "started_at": time.time(), **extra}
        path = Path(str(self.request["record"]))
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, default=list))
        tmp.replace(path)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            reader = conn.makefile("rb")
            try:
                request = json.loads(reader.readline() or b"{}")
            except (OSError, ValueError):
                return
            if request.get("token") != self.request["token"] or request.get("op") not in ("lease", "claim"):
                return
            with self.cond:
                if self.stopping:
                    return
                self.leases += 1  # a claimed database keeps the server too (an xdist worker's, say)
                self.cond.notify_all()
            claimed = ""
            try:
                if request["op"] == "claim":
                    claimed = self._claim(conn, request)
                    if not claimed:
                        return
                    conn.sendall(json.dumps({"ok": True}).encode() + b"\n")
                else:
                    conn.sendall(json.dumps({"ok": True, "endpoint": self.endpoint, **self._lease_info()})
                                 .encode() + b"\n")
                for line in reader:  # held for the run's session; EOF when it ends or dies
                    if claimed:
                        conn.sendall(json.dumps(self._about_claimed(claimed, line)).encode() + b"\n")
            except OSError:
                pass
            finally:
                if claimed:
                    self.running.release_database(claimed)  # before the lease ends: the idle stop waits
                with self.cond:
                    self.leases -= 1
                    self.cond.notify_all()

    def _about_claimed(self, name: str, line: bytes) -> dict[str, Any]:
        """A request about a claimed database, on its claim's connection: ``capture`` (log its statements)."""
        try:
            request = json.loads(line)
            if request.get("op") != "capture":
                raise ServerStartError(f"unknown request {request.get('op')!r} about a claimed database",
                                       boundary="keeper")
            return {"ok": True, **self.running.capture_database(name)}
        except Exception as exc:
            return {"ok": False, "error": _wire(exc)}

    def _lease_info(self) -> dict[str, Any]:
        """What the server tells a new lease besides its endpoint (PostgreSQL: its templates, so a run whose
        template is built needs no connection to find out)."""
        lease_info = getattr(self.running, "lease_info", None)
        if lease_info is None:
            return {}
        try:
            return {"info": lease_info()}
        except Exception:  # the run asks the server itself
            return {}

    def _claim(self, conn: socket.socket, request: Mapping[str, Any]) -> str:
        """Hand out a database (the server's claim_database); its name, or "" when refused (told to the run)."""
        try:
            claim_database = getattr(self.running, "claim_database", None)
            if claim_database is None:
                raise ServerStartError(f"a kept {self.request['engine']} server hands out no databases",
                                       boundary="keeper")
            name = str(request.get("name", ""))
            claim_database(str(request.get("template", "")), name)
        except Exception as exc:
            conn.sendall(json.dumps({"ok": False, "error": _wire(exc)}).encode() + b"\n")
            return ""
        return name

    def _wait_idle(self, idle: float) -> None:
        with self.cond:
            while not self.stopping:
                if self.leases == 0:
                    if not self.cond.wait_for(lambda: self.leases > 0 or self.stopping, timeout=idle):
                        return  # unleased for `idle` seconds
                else:
                    self.cond.wait()

    def _stop(self) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify_all()


def _wire(exc: Exception) -> dict[str, Any]:
    """A failure of a request to the keeper, as the run will raise it."""
    if isinstance(exc, TestbedError):
        return to_wire(exc)
    return to_wire(ServerStartError(f"{type(exc).__name__}: {exc}", boundary="keeper"))


def _settings_fields(cls: type[Any], data: Mapping[str, Any]) -> dict[str, Any]:
    known = {f.name for f in dataclasses.fields(cls)}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known}


def main(argv: list[str]) -> int:
    request_path = Path(argv[0])
    request = json.loads(request_path.read_text())
    request_path.unlink(missing_ok=True)
    if os.fork():  # the launcher exits at once; the keeper is adopted by init, so no run waits on it
        return 0
    os.setsid()
    Keeper(request).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
