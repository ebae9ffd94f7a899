"""The stub server in its own process (``python -m testbed.stubs``), driven through its admin API.

``RemoteStubServer`` offers what ``HttpStub`` needs from ``StubServer`` (stubs, journal, scenarios, reset),
so the ``http_stub`` fixture works the same with ``[tool.testbed.http] in_process = false``. It also works
against any WireMock-compatible server already running: ``RemoteStubServer.connect("http://host:port")``.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from testbed.errors import ServerDiedError, ServerStartError
from testbed.stubs.errors import InvalidStubError, StubError
from testbed.stubs.files import LoadResult, load_mappings, read_mapping_file
from testbed.stubs.journal import ServedResponse, ServeEvent
from testbed.stubs.mapping import STARTED, StubMapping, parse_mapping
from testbed.stubs.request import Request


class RemoteStubServer:
    """A stub server reached over HTTP; ``spawn`` starts testbed's own in a child process."""

    def __init__(
        self,
        url: str,
        *,
        process: subprocess.Popen[str] | None = None,
        https_port: int | None = None,
        ca_bundle: Path | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        parts = urlsplit(self.url)
        self._host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self._process = process
        self.pid = process.pid if process is not None else None
        self._start_time: int | None = None
        if process is not None:
            from testbed.runners.reaper import process_start_time

            self._start_time = process_start_time(process.pid)
        self.log_path = log_path  # the child's output (a spawned server only)
        self.https_port = https_port
        self._ca_bundle = ca_bundle
        self._lock = threading.Lock()
        self._conn: http.client.HTTPConnection | None = None
        self.load_errors: list[InvalidStubError] = []

    # -- lifecycle ---------------------------------------------------------------------------------

    @classmethod
    def spawn(
        cls, *, root_dir: str | Path | None = None, https: bool = False, startup_timeout: float = 30.0
    ) -> RemoteStubServer:
        """Start ``python -m testbed.stubs`` on a free loopback port and wait until it serves."""
        cmd = [
            sys.executable,
            "-m",
            "testbed.stubs",
            "--port",
            "0",
            "--bind-address",
            "127.0.0.1",
            "--disable-banner",
            "--die-with-parent",
        ]
        if root_dir is not None:
            cmd += ["--root-dir", str(root_dir)]
        if https:
            cmd += ["--https-port", "0"]
        import tempfile

        from testbed.runners.reaper import current_record

        log_dir = Path(tempfile.mkdtemp(prefix="testbed-stub-proc-"))
        current_record().add_path(log_dir)  # reaped by the next run if this one is SIGKILLed
        log_path = log_dir / "stub-server.log"
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        log = open(log_path, "w", encoding="utf-8")  # noqa: SIM115  # closed by _drain
        info: dict[str, str] = {}
        lines: list[str] = []
        deadline = time.monotonic() + startup_timeout
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            log.write(line)
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
            if key == "serving":  # the CLI's last start-up line
                break
        if "port" not in info:
            proc.kill()
            proc.wait(10)
            proc.stdout.close()
            if proc.stdin is not None:
                proc.stdin.close()
            log.close()
            import shutil

            shutil.rmtree(log_dir, ignore_errors=True)
            current_record().remove_path(log_dir)
            raise ServerStartError(
                "the HTTP stub server process did not start; its output:\n" + "".join(lines[-20:]),
                boundary="HTTP stub",
            )
        log.flush()
        threading.Thread(target=_drain, args=(proc, log), daemon=True, name="testbed-stub-proc-log").start()
        server = cls(
            f"http://127.0.0.1:{info['port']}",
            process=proc,
            https_port=int(info["https-port"]) if "https-port" in info else None,
            ca_bundle=Path(info["ca-bundle"]) if "ca-bundle" in info else None,
            log_path=log_path,
        )
        for err in (line.removeprefix("skipped: ") for line in lines if line.startswith("skipped:")):
            server.load_errors.append(InvalidStubError(err.strip()))
        return server

    @classmethod
    def connect(cls, url: str) -> RemoteStubServer:
        """A server that is already running (testbed's or WireMock's)."""
        return cls(url)

    def start(self) -> RemoteStubServer:
        return self

    def stop(self) -> None:
        """Stop the child process (if this object started one)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        proc = self._process
        if proc is None:
            return
        self._process = None
        if proc.stdin is not None:
            proc.stdin.close()  # --die-with-parent: the server stops on EOF; terminate() is the fallback
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
        if self.log_path is not None:
            import shutil

            from testbed.runners.reaper import current_record

            shutil.rmtree(self.log_path.parent, ignore_errors=True)
            current_record().remove_path(self.log_path.parent)

    def alive(self) -> bool:
        """Whether the spawned server process is still running (True for a server this object did not start)."""
        if self.pid is None:
            return True
        from testbed.runners.reaper import is_same_process

        return is_same_process(self.pid, self._start_time)

    def log_tail(self, lines: int = 25) -> str:
        """The last lines the spawned server printed (its start-up banner, errors, a crash)."""
        if self.log_path is None:
            return "    (not started by testbed: no log)"
        from testbed.runners.process import log_tail

        return log_tail(self.log_path, lines)

    def _unreachable(self, method: str, path: str, exc: BaseException) -> Exception:
        """The error for an admin call that could not connect: a dead server is named with its log tail."""
        what = f"{method} /__admin{path}"
        if self.pid is not None:
            from testbed.runners.reaper import gone_within

            # A killed server drops its sockets a moment before it shows up as exited: allow it that.
            if gone_within(self.pid, self._start_time, 1.0):
                return ServerDiedError(
                    f"the HTTP stub server process (python -m testbed.stubs, pid {self.pid}, port {self.port}) "
                    f"is no longer running (seen on {what}: {type(exc).__name__}: {exc}). Something stopped it "
                    f"(a signal, the OOM killer); the next session starts a fresh one. Its last log lines "
                    f"({self.log_path}):\n"
                    f"{self.log_tail()}",
                    boundary="HTTP stub",
                )
            return StubError(
                f"the HTTP stub server at {self.url} (pid {self.pid}, still running) did not answer {what}: "
                f"{type(exc).__name__}: {exc}. Its last log lines ({self.log_path}):\n{self.log_tail()}"
            )
        return StubError(
            f"cannot reach the stub server at {self.url} ({what}): {type(exc).__name__}: {exc}. "
            "Is it running?"
        )

    def __enter__(self) -> RemoteStubServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- admin calls -------------------------------------------------------------------------------

    def admin(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One admin API call on a kept-alive connection; returns (status, parsed JSON or None)."""
        data = json.dumps(body).encode() if body is not None else None
        with self._lock:
            for attempt in (1, 2):
                if self._conn is None:
                    self._conn = http.client.HTTPConnection(self._host, self.port, timeout=30)
                try:
                    self._conn.request(
                        method, "/__admin" + path, body=data, headers={"Content-Type": "application/json"}
                    )
                    resp = self._conn.getresponse()
                    raw = resp.read()
                    break
                except (OSError, http.client.HTTPException) as exc:
                    self._conn.close()
                    self._conn = None
                    if attempt == 2:
                        raise self._unreachable(method, path, exc) from None  # the message names exc
        try:
            return resp.status, json.loads(raw) if raw else None
        except ValueError:
            return resp.status, raw.decode("utf-8", "replace")

    def _ok(self, method: str, path: str, body: Any = None) -> Any:
        status, data = self.admin(method, path, body)
        if status == 422 and isinstance(data, dict) and data.get("errors"):
            err = data["errors"][0]
            raise InvalidStubError(str(err.get("detail")), str(err.get("source", {}).get("pointer", "")))
        if status >= 300:
            raise StubError(f"admin call {method} /__admin{path} answered {status}: {data}")
        return data

    # -- what HttpStub uses ------------------------------------------------------------------------

    @property
    def https_url(self) -> str:
        if self.https_port is None:
            raise StubError(
                "this stub server process has no HTTPS port; set [tool.testbed.http] https = true"
            )
        return f"https://localhost:{self.https_port}"

    @property
    def ca_bundle(self) -> Path:
        if self._ca_bundle is None:
            raise StubError("this stub server process has no HTTPS port, so no CA bundle")
        return self._ca_bundle

    def https_url_with(self, fault: str) -> str:
        """An HTTPS port of the server process presenting a bad certificate (see StubServer.https_url_with)."""
        return str(self._ok("POST", "/testbed/https-faults", {"fault": fault})["url"])

    @property
    def client_cert(self) -> Path:
        """The client certificate (PEM, with its key) the server process's require-client-cert port accepts."""
        return Path(self._ok("GET", "/testbed/client-cert")["path"])

    def enable_https(self) -> None:
        if self.https_port is None:
            raise StubError(
                "an own-process stub server starts HTTPS only at launch: set [tool.testbed.http] "
                "https = true (or use the in-process default)"
            )

    def add_mapping(self, mapping: Mapping[str, Any] | StubMapping) -> StubMapping:
        data = mapping.to_json() if isinstance(mapping, StubMapping) else dict(mapping)
        return parse_mapping(self._ok("POST", "/mappings", data))

    def load_mappings(self, path: str | Path) -> LoadResult:
        p = Path(path)
        if p.is_file():
            result = LoadResult(stubs=read_mapping_file(p))
        else:
            result = load_mappings(p / "mappings" if (p / "mappings").is_dir() else p)
        result.stubs = [self.add_mapping(s) for s in result.stubs]
        return result

    def remove_mapping(self, stub_id: str) -> None:
        self.admin("DELETE", f"/mappings/{stub_id}")

    def reset(self) -> None:
        self._ok("POST", "/reset")

    def set_scenario_state(self, name: str, state: str | None) -> None:
        self._ok("PUT", f"/scenarios/{name}/state", {"state": state} if state else {})

    def scenario_state(self, name: str) -> str:
        for scenario in self._ok("GET", "/scenarios")["scenarios"]:
            if scenario["name"] == name:
                return str(scenario["state"])
        return STARTED

    def stubs(self) -> list[StubMapping]:
        return [parse_mapping(m) for m in self._ok("GET", "/mappings")["mappings"]]

    def events(self) -> list[ServeEvent]:
        out = []
        for e in reversed(self._ok("GET", "/requests")["requests"]):
            request = Request.from_json(e["request"])
            stub = parse_mapping(e["stubMapping"]) if e.get("wasMatched") and e.get("stubMapping") else None
            resp = e.get("response") or {}
            out.append(ServeEvent(request, stub, ServedResponse(int(resp.get("status", 0))), id=e["id"]))
        return out


def _drain(proc: subprocess.Popen[str], log: Any) -> None:
    """Copy the child's output to its log file until it exits (so the pipe never fills)."""
    stream = proc.stdout
    try:
        if stream is not None:
            for line in stream:
                log.write(line)
                log.flush()
    except (OSError, ValueError):
        pass
    finally:
        log.close()
