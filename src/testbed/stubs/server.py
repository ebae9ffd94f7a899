"""The stub server: plain-socket HTTP/1.1 (keep-alive, a thread per connection), HTTP and HTTPS.

``StubServer`` is the library API (``with StubServer() as s: s.url``); ``serve`` decides what to answer
to one request without any socket, so the matching and response rules can be used and tested alone.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from testbed import observe
from testbed.stubs import faults
from testbed.stubs.errors import InvalidStubError, StubError
from testbed.stubs.files import LoadResult, body_file, load_mappings
from testbed.stubs.journal import Journal, ServedResponse, ServeEvent
from testbed.stubs.mapping import StubMapping, parse_mapping
from testbed.stubs.registry import StubRegistry
from testbed.stubs.request import Request
from testbed.stubs.responses import ChunkedDribble
from testbed.stubs.scenarios import Scenarios

if TYPE_CHECKING:
    import ssl

    from testbed.stubs.admin import AdminApi
    from testbed.stubs.recording import Recorder
    from testbed.stubs.tls import TlsMaterial

VERSION = "3.13.2"
_MAX_HEAD = 64 * 1024
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "host",
    }
)


# The phrases of http.HTTPStatus for the usual codes: importing http (an enum of 60 members) is a
# measurable share of the standalone server's start; rarer codes still ask it.
_REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    302: "Found",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    422: "Unprocessable Entity",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _one_line(text: str) -> str:
    return " ".join(text.splitlines())


def _reason(status: int) -> str:
    phrase = _REASONS.get(status)
    if phrase is not None:
        return phrase
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


@dataclass
class Reply:
    """What to write back for one request."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    reason: str | None = None
    delay_ms: float = 0.0
    dribble: ChunkedDribble | None = None
    fault: str | None = None
    close_after: bool = False


class _BadRequest(Exception):
    pass


class StubServer:
    """A WireMock-compatible HTTP stub server on a loopback port.

    >>> with StubServer() as server:
    ...     server.add_mapping({"request": {"urlPath": "/hi"}, "response": {"body": "hello"}})
    ...     # requests to server.url + "/hi" now answer "hello"
    """

    def __init__(
        self,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        root_dir: str | Path | None = None,
        https: bool = False,
        https_port: int | None = None,
        global_response_templating: bool = False,
        verbose: bool = False,
        max_request_journal_entries: int | None = 10_000,
        request_journal: bool = True,
        tls: TlsMaterial | None = None,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.root_dir = Path(root_dir) if root_dir is not None else None
        self._https = https or https_port is not None or tls is not None
        self._requested_https_port = https_port or 0
        self.global_response_templating = global_response_templating
        self.verbose = verbose
        self.scenarios = Scenarios()
        self.registry = StubRegistry(self.scenarios)
        self.journal = Journal(max_request_journal_entries, enabled=request_journal)
        self.settings: dict[str, Any] = {}
        self.load_errors: list[InvalidStubError] = []
        self._scenario_lock = threading.Lock()
        self.errors: list[str] = []  # unexpected exceptions while serving (reported by the fixture)
        self.webhook_errors: list[str] = []  # webhooks that could not be delivered
        self._tls = tls
        self._owned_root: Path | None = None  # a temporary root made for /__admin/files, removed at stop
        self._owns_tls = tls is None  # a CA we create is removed at stop; a given one is the caller's
        self._listeners: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        self._running = False
        self._stopped = threading.Event()
        self.port = 0
        self.https_port: int | None = None
        self._fault_ports: dict[str, int] = {}  # TLS fault -> the HTTPS port presenting it
        self.started_at = 0.0
        self._admin: AdminApi | None = None
        self._recorder: Recorder | None = None

    @property
    def recorder(self) -> Recorder:
        """Record/snapshot of proxied traffic into stubs (WireMock's /__admin/recordings)."""
        if self._recorder is None:
            from testbed.stubs.recording import Recorder

            self._recorder = Recorder(self)
        return self._recorder

    @property
    def admin(self) -> AdminApi:
        """The /__admin request handler (imported on first use: it is not needed to serve stubs)."""
        if self._admin is None:
            from testbed.stubs.admin import AdminApi

            self._admin = AdminApi(self)
        return self._admin

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> StubServer:
        """Bind the port(s), load the root directory's mappings and start serving."""
        if self._running:
            return self
        self.started_at = time.time()
        if self.root_dir is not None:
            self.reset_mappings()
        http_sock = self._listen(self._requested_port)
        self.port = http_sock.getsockname()[1]
        self._spawn(self._accept_loop, http_sock, None, "http")
        self._running = True
        if self._https:
            self.enable_https()
        return self

    def enable_https(self) -> None:
        """Start the HTTPS port now (a fresh throwaway CA unless one was given); idempotent."""
        with self._conn_lock:
            if self.https_port is not None:
                return
            if self._tls is None:
                from testbed.stubs.tls import make_tls

                self._tls = make_tls()
            tls_sock = self._listen(self._requested_https_port)
            self.https_port = tls_sock.getsockname()[1]
            self._spawn(self._accept_loop, tls_sock, self._tls.server_context, "https")

    def https_url_with(self, fault: str) -> str:
        """The base URL of an HTTPS port serving the same stubs with a bad certificate (or mutual TLS).

        ``fault`` is one of ``testbed.stubs.tls.TLS_FAULTS``: untrusted-ca, expired, not-yet-valid,
        wrong-host, self-signed, require-client-cert. A client that trusts ``ca_bundle`` must refuse
        every one of them (for require-client-cert: unless it presents ``client_cert``)::

            with pytest.raises(httpx.ConnectError):
                httpx.get(server.https_url_with("expired") + "/x", verify=server.tls.client_context())
        """
        self.enable_https()
        with self._conn_lock:
            port = self._fault_ports.get(fault)
            if port is None:
                assert self._tls is not None
                context = self._tls.fault_context(fault)  # StubError naming the faults for an unknown one
                sock = self._listen(0)
                port = self._fault_ports[fault] = sock.getsockname()[1]
                self._spawn(self._accept_loop, sock, context, "https")
        return f"https://localhost:{port}"

    @property
    def client_cert(self) -> Path:
        """PEM (certificate and key) of a client certificate the require-client-cert port accepts."""
        self.enable_https()
        assert self._tls is not None
        return self._tls.client_cert

    def _listen(self, port: int) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, port))
        except OSError as exc:
            sock.close()
            raise StubError(f"cannot bind {self.host}:{port}: {exc}. Use port 0 for a free port.") from exc
        sock.listen(128)
        self._listeners.append(sock)
        return sock

    def _spawn(self, target: Any, *args: Any) -> None:
        t = threading.Thread(target=target, args=args, daemon=True, name=f"testbed-stub-{args[-1]}")
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        """Stop listening and close every open connection."""
        if not self._running:
            return
        self._running = False
        for sock in self._listeners:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        with self._conn_lock:
            conns = list(self._connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(timeout=2)
        self._listeners.clear()
        self._threads.clear()
        self.https_port = None
        self._fault_ports.clear()
        if self._tls is not None and self._owns_tls:
            self._tls.cleanup()
            self._tls = None
        if self._owned_root is not None:
            import shutil

            shutil.rmtree(self._owned_root, ignore_errors=True)
            self.root_dir = self._owned_root = None
        self._stopped.set()

    def wait_stopped(self, timeout: float | None = None) -> bool:
        return self._stopped.wait(timeout)

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL of the plain HTTP port, e.g. ``http://127.0.0.1:53817``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def https_url(self) -> str:
        """Base URL of the HTTPS port (the server must have been created with ``https=True``)."""
        if self.https_port is None:
            raise StubError(
                "this stub server has no HTTPS port; create it with StubServer(https=True) "
                "or set [tool.testbed.http] https = true"
            )
        return f"https://localhost:{self.https_port}"

    @property
    def ca_bundle(self) -> Path:
        """PEM file of the throwaway CA that signed the HTTPS certificate: give it to the client."""
        if self._tls is None:
            raise StubError("this stub server has no HTTPS port, so no CA bundle; use StubServer(https=True)")
        return self._tls.ca_bundle

    @property
    def tls(self) -> TlsMaterial | None:
        return self._tls

    # -- stubs -------------------------------------------------------------------------------------

    def add_mapping(self, mapping: Mapping[str, Any] | StubMapping) -> StubMapping:
        """Add a stub from WireMock JSON (a dict) or a StubMapping; returns the stored stub."""
        stub = mapping if isinstance(mapping, StubMapping) else parse_mapping(dict(mapping))
        self.registry.add(stub)
        return stub

    def load_mappings(self, path: str | Path) -> LoadResult:
        """Add the stubs of a mapping file or a folder of them (a root dir's ``mappings/`` or any folder)."""
        p = Path(path)
        if p.is_file():
            from testbed.stubs.files import read_mapping_file

            result = LoadResult(stubs=read_mapping_file(p))
        else:
            result = load_mappings(p / "mappings" if (p / "mappings").is_dir() else p)
        self.registry.add_many(result.stubs)
        return result

    def files_dir(self) -> Path:
        """The ``__files`` folder body files come from (a temporary root if none was given)."""
        if self.root_dir is None:
            import tempfile

            self.root_dir = Path(tempfile.mkdtemp(prefix="testbed-stub-root-"))
            self._owned_root = self.root_dir
        folder = self.root_dir / "__files"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def reset_mappings(self) -> None:
        """Back to the root directory's stubs (none without a root directory)."""
        self.registry.clear()
        self.load_errors = []
        if self.root_dir is not None:
            result = load_mappings(self.root_dir / "mappings")
            self.registry.add_many(result.stubs)
            self.load_errors = result.errors
            for err in result.errors:
                print(f"testbed stub server: skipped {err}", file=sys.stderr)

    def reset(self) -> None:
        """WireMock's POST /__admin/reset: stubs back to files, journal cleared, scenarios reset."""
        self.reset_mappings()
        self.journal.clear()
        self.scenarios.reset()

    # -- serving -----------------------------------------------------------------------------------

    def serve(self, request: Request) -> tuple[Reply, StubMapping | None]:
        """What to answer to ``request`` (no I/O besides body files and proxying)."""
        started = time.perf_counter()
        error: str | None = None
        stub = self.registry.match(request)
        if stub is None:
            from testbed.stubs.near_miss import near_misses_for_request, not_matched_table

            misses = near_misses_for_request(request, self.registry.ordered(), 1, scenarios=self.scenarios)
            body = not_matched_table(request, misses[0] if misses else None).encode()
            reply = Reply(404, [("Content-Type", "text/plain;charset=UTF-8")], body)
        else:
            if stub.scenario_name is not None:
                # Match and move the state as one step, so concurrent requests see each state once.
                with self._scenario_lock:
                    stub = self.registry.match(request)
                    if stub is not None:
                        self.scenarios.advance(stub)
                if stub is None:
                    return self.serve(request)
            try:
                reply = self._reply_for(stub, request)
            except StubError as exc:
                # As WireMock: a 500 in plain text, still naming the stub that matched
                error = str(exc)
                reply = Reply(500, [("Content-Type", "text/plain"), ("Matched-Stub-Id", stub.id)], error.encode())
        if stub is not None and ("postServeActions" in stub.raw or "serveEventListeners" in stub.raw):
            from testbed.stubs.webhooks import fire, webhook_parameters

            fire(webhook_parameters(stub.raw), request, self.webhook_errors)
        served_ms = (time.perf_counter() - started) * 1000
        if self.journal.enabled:
            self.journal.record(
                ServeEvent(
                    request,
                    stub,
                    ServedResponse(reply.status, tuple(reply.headers), reply.body, reply.fault),
                    serve_ms=served_ms,
                    error=error,
                )
            )
        if observe.active():
            self._publish(request, stub, reply, served_ms, error)
        return reply, stub

    def _publish(self, request: Request, stub: StubMapping | None, reply: Reply, served_ms: float,
                 error: str | None) -> None:
        """Tell the per-test report what crossed the HTTP boundary (bodies capped)."""
        name = (stub.name or stub.id) if stub is not None else None
        outcome = reply.fault or str(reply.status)
        observe.publish(
            "http", "exchange" if stub is not None else "unmatched",
            f"{request.method} {request.url} -> {outcome}" + (f" ({name})" if name else " (no stub matched)"),
            method=request.method, url=request.url, stub=name, status=reply.status, fault=reply.fault,
            delay_ms=reply.delay_ms, error=error, served_ms=round(served_ms, 2),
            request_body=request.body[:2048].decode("utf-8", "replace"),
            response_body=(reply.body or b"")[:2048].decode("utf-8", "replace"),
        )

    def _reply_for(self, stub: StubMapping, request: Request) -> Reply:
        resp = stub.response
        delay = resp.delay_ms(self.settings.get("fixedDelay"))
        if resp.fault is not None:
            return Reply(resp.status, fault=resp.fault, delay_ms=delay)
        if resp.proxy_base_url is not None:
            reply = self._proxy(stub, request)
            reply.delay_ms = delay
            return reply
        templated = resp.templated or self.global_response_templating
        headers = list(resp.headers)
        body = resp.body or b""
        if resp.body_file is not None:
            name = resp.body_file
            if templated:
                name = self._render(name, stub, request)
            path = body_file(self.root_dir, name)
            try:
                body = path.read_bytes()
            except OSError as exc:
                raise StubError(
                    f"bodyFileName {name!r} of stub {stub.label!r}: cannot read {path}: {exc}"
                ) from exc
            if templated:
                body = self._render(body.decode("utf-8", "replace"), stub, request).encode()
        elif templated and resp.body_text is not None:
            body = self._render(resp.body_text, stub, request).encode()
        if templated:
            headers = [(k, self._render(v, stub, request)) for k, v in headers]
        headers.append(("Matched-Stub-Id", stub.id))
        if stub.name is not None:
            headers.append(("Matched-Stub-Name", stub.name))
        return Reply(
            resp.status,
            headers,
            body,
            reason=resp.status_message,
            delay_ms=delay,
            dribble=resp.chunked_dribble,
        )

    def _render(self, template: str, stub: StubMapping, request: Request) -> str:
        if "{{" not in template:
            return template
        from testbed.stubs.templating import render  # only stubs that template pay for the import

        return render(
            template,
            request,
            path_params=stub.request.url.path_parameters(request),
            parameters=stub.response.transformer_parameters,
        )

    def _proxy(self, stub: StubMapping, request: Request) -> Reply:
        import http.client

        resp = stub.response
        assert resp.proxy_base_url is not None
        base_url = resp.proxy_base_url
        if resp.templated or self.global_response_templating:  # e.g. "{{request.headers.X-Upstream}}"
            base_url = self._render(base_url, stub, request).rstrip("/")
        target = urlsplit(base_url)
        if target.scheme not in ("http", "https") or not target.hostname:
            return Reply(
                500,
                [("Content-Type", "text/plain;charset=UTF-8")],
                f"testbed stub proxy: proxyBaseUrl {base_url!r} is not an http(s) URL".encode(),
            )
        path = request.url
        prefix = resp.proxy_url_prefix_to_remove
        if prefix and path.startswith(prefix):
            path = path[len(prefix) :]
        full_path = target.path.rstrip("/") + path
        if not full_path.startswith("/"):
            full_path = "/" + full_path
        conn_cls = http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
        conn = conn_cls(target.hostname or "127.0.0.1", target.port, timeout=30)
        headers = {
            k: v
            for k, v in request.headers
            if k.lower() not in _HOP_BY_HOP and k.lower() not in resp.remove_proxy_headers
        }
        headers.update(resp.additional_proxy_headers)
        try:
            conn.request(request.method, full_path, body=request.body or None, headers=headers)
            upstream = conn.getresponse()
            body = upstream.read()
            out = [(k, v) for k, v in upstream.getheaders() if k.lower() not in _HOP_BY_HOP]
            status, reason = upstream.status, upstream.reason
        except OSError as exc:
            return Reply(
                500,
                [("Content-Type", "text/plain;charset=UTF-8")],
                f"testbed stub proxy to {base_url} failed: {exc}".encode(),
            )
        finally:
            conn.close()
        # As WireMock: a proxied response carries the upstream's headers only (no Matched-Stub-* of ours).
        return Reply(status, out, body, reason=reason)

    # -- sockets -----------------------------------------------------------------------------------

    def _accept_loop(self, listener: socket.socket, context: ssl.SSLContext | None, scheme: str) -> None:
        while True:
            try:
                conn, addr = listener.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            t = threading.Thread(
                target=self._connection, args=(conn, addr, context, scheme), daemon=True, name="testbed-stub-conn"
            )
            t.start()

    def _connection(self, conn: socket.socket, addr: Any, context: ssl.SSLContext | None, scheme: str) -> None:
        sock: socket.socket = conn
        with self._conn_lock:
            self._connections.add(conn)
        try:
            if context is not None:
                try:
                    conn.settimeout(10)
                    sock = context.wrap_socket(conn, server_side=True)
                    sock.settimeout(None)
                except OSError:  # ssl.SSLError is an OSError: the client refused us, or we refused it
                    return
            self._serve_connection(sock, addr, scheme)
        except OSError:
            pass
        except Exception as exc:  # never a silent dead thread: the fixture reports these
            import traceback

            self.errors.append("connection handler: " + "".join(traceback.format_exception(exc)))
        finally:
            with self._conn_lock:
                self._connections.discard(conn)
            try:
                sock.close()
            except OSError:
                pass

    def _serve_connection(self, sock: socket.socket, addr: Any, scheme: str) -> None:
        buf = b""
        recv = sock.recv
        local_port = sock.getsockname()[1]
        while True:
            while True:
                end = buf.find(b"\r\n\r\n")
                if end >= 0:
                    break
                if len(buf) > _MAX_HEAD:
                    self._write_simple(sock, 431, "request head too large")
                    return
                data = recv(65536)
                if not data:
                    return
                buf += data
            head = buf[:end].decode("latin-1")
            buf = buf[end + 4 :]
            lines = head.split("\r\n")
            try:
                method, target, version = lines[0].split(" ", 2)
            except ValueError:
                self._write_simple(sock, 400, "malformed request line")
                return
            headers: list[tuple[str, str]] = []
            length = 0
            chunked = False
            keep_alive = version == "HTTP/1.1"
            expect_continue = False
            host_header = ""
            for line in lines[1:]:
                name, _, value = line.partition(":")
                value = value.strip()
                headers.append((name, value))
                low = name.lower()
                if low == "content-length":
                    try:
                        length = int(value)
                    except ValueError:
                        self._write_simple(sock, 400, "bad Content-Length")
                        return
                elif low == "transfer-encoding" and "chunked" in value.lower():
                    chunked = True
                elif low == "connection":
                    v = value.lower()
                    if "close" in v:
                        keep_alive = False
                    elif "keep-alive" in v:
                        keep_alive = True
                elif low == "expect" and value.lower() == "100-continue":
                    expect_continue = True
                elif low == "host":
                    host_header = value
            if expect_continue:
                sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            if chunked:
                try:
                    body, buf = self._read_chunked(sock, buf)
                except ValueError:
                    self._write_simple(sock, 400, "malformed chunked request body")
                    return
            elif length:
                while len(buf) < length:
                    data = recv(max(65536, length - len(buf)))
                    if not data:
                        return
                    buf += data
                body, buf = buf[:length], buf[length:]
            else:
                body = b""
            if target.startswith(("http://", "https://")):
                parts = urlsplit(target)
                target = parts.path + (f"?{parts.query}" if parts.query else "")
            host = (
                host_header.rsplit(":", 1)[0]
                if host_header and not host_header.endswith("]")
                else (host_header or self.host)
            )
            request = Request(
                method.upper(),
                target or "/",
                tuple(headers),
                body,
                scheme=scheme,
                host=host.strip("[]") or self.host,
                port=local_port,
                client_ip=addr[0],
                protocol=version,
            )
            if self.verbose:
                print(f"testbed stub: {method} {target}", file=sys.stderr)
            try:
                if target.startswith("/__admin"):
                    reply = self.admin.handle(request)
                else:
                    reply, _ = self.serve(request)
            except Exception as exc:  # a bug of ours must reach the test, not vanish in a server thread
                import traceback

                detail = "".join(traceback.format_exception(exc))
                self.errors.append(f"{method} {target}: {detail}")
                print(f"testbed stub server: {method} {target} failed:\n{detail}", file=sys.stderr)
                # The client gets what failed, not our stack: the traceback goes to the test (errors) and
                # to stderr, where a report of the bug can pick it up.
                reply = Reply(
                    500,
                    [("Content-Type", "text/plain;charset=UTF-8")],
                    f"testbed stub server error while answering {method} {target}: {type(exc).__name__}: "
                    f"{exc}\nThis is a testbed bug; the traceback is on the server's stderr."[:4000].encode(),
                )
            if reply.fault is not None:
                if reply.delay_ms:
                    time.sleep(reply.delay_ms / 1000)
                faults.apply(reply.fault, sock)
                return
            self._write(sock, reply, head_only=method.upper() == "HEAD", keep_alive=keep_alive)
            if reply.close_after:
                self._after_close()
                return
            if not keep_alive:
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return

    def _after_close(self) -> None:
        threading.Thread(target=self.stop, daemon=True).start()

    @staticmethod
    def _read_chunked(sock: socket.socket, buf: bytes) -> tuple[bytes, bytes]:
        body = bytearray()
        while True:
            while b"\r\n" not in buf:
                data = sock.recv(65536)
                if not data:
                    raise OSError("connection closed in a chunked body")
                buf += data
            size_line, buf = buf.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while b"\r\n" not in buf:  # trailers end with an empty line
                    data = sock.recv(65536)
                    if not data:
                        break
                    buf += data
                _, _, buf = buf.partition(b"\r\n")
                return bytes(body), buf
            while len(buf) < size + 2:
                data = sock.recv(65536)
                if not data:
                    raise OSError("connection closed in a chunked body")
                buf += data
            body += buf[:size]
            buf = buf[size + 2 :]

    def _write(self, sock: socket.socket, reply: Reply, *, head_only: bool, keep_alive: bool) -> None:
        if reply.delay_ms > 0:
            time.sleep(reply.delay_ms / 1000)
        reason = reply.reason if reply.reason is not None else _reason(reply.status)
        lines = [f"HTTP/1.1 {reply.status} {reason}"]
        for k, v in reply.headers:
            if "\n" in v or "\r" in v or "\n" in k or "\r" in k:  # a templated header: never split the response
                k, v = _one_line(k), _one_line(v)
            lines.append(f"{k}: {v}")
        if reply.dribble is not None and reply.body and not head_only:
            lines.append("Transfer-Encoding: chunked")
            if not keep_alive:
                lines.append("Connection: close")
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace"))
            self._dribble(sock, reply.body, reply.dribble)
            return
        lines.append(f"Content-Length: {len(reply.body)}")
        if not keep_alive:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        sock.sendall(head if head_only else head + reply.body)

    @staticmethod
    def _dribble(sock: socket.socket, body: bytes, dribble: ChunkedDribble) -> None:
        n = min(dribble.number_of_chunks, len(body))
        size = -(-len(body) // n)
        pause = dribble.total_duration_ms / 1000 / n
        for i in range(0, len(body), size):
            piece = body[i : i + size]
            sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            time.sleep(pause)
        sock.sendall(b"0\r\n\r\n")

    @staticmethod
    def _write_simple(sock: socket.socket, status: int, message: str) -> None:
        body = message.encode()
        sock.sendall(
            f"HTTP/1.1 {status} {_reason(status)}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )

    # -- the interface HttpStub uses (RemoteStubServer offers the same over the admin API) ----------

    def events(self) -> list[ServeEvent]:
        """The request journal, oldest first."""
        return self.journal.events()

    def stubs(self) -> list[StubMapping]:
        """The stubs in the order they are tried (priority, then newest first)."""
        return list(self.registry.ordered())

    def remove_mapping(self, stub_id: str) -> None:
        self.registry.remove(stub_id)

    def set_scenario_state(self, name: str, state: str | None) -> None:
        self.scenarios.set(name, state)

    def scenario_state(self, name: str) -> str:
        return self.scenarios.state(name)
