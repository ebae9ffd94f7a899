"""The request a client sent, as the stub server saw it (WireMock's LoggedRequest)."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from testbed.stubs.ids import new_id


@dataclass(frozen=True)
class Part:
    """One part of a multipart body."""

    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header_values(self, name: str) -> list[str]:
        low = name.lower()
        return [v for k, v in self.headers if k.lower() == low]


@dataclass(frozen=True, eq=False)
class Request:
    """One HTTP request: method, target, headers, body and where it came from."""

    method: str
    url: str  # the request target as sent: path plus query string
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    scheme: str = "http"
    host: str = "127.0.0.1"
    port: int = 0
    client_ip: str = "127.0.0.1"
    protocol: str = "HTTP/1.1"
    id: str = field(default_factory=new_id)
    logged_at: float = field(default_factory=time.time)

    @cached_property
    def path(self) -> str:
        q = self.url.find("?")
        return self.url if q < 0 else self.url[:q]

    @cached_property
    def query(self) -> dict[str, list[str]]:
        q = self.url.find("?")
        out: dict[str, list[str]] = {}
        if q >= 0:
            for k, v in parse_qsl(self.url[q + 1 :], keep_blank_values=True):
                out.setdefault(k, []).append(v)
        return out

    @cached_property
    def _headers_lower(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for k, v in self.headers:
            out.setdefault(k.lower(), []).append(v)
        return out

    def header_values(self, name: str) -> list[str]:
        """All values of a header (names are case-insensitive)."""
        return self._headers_lower.get(name.lower(), [])

    def header(self, name: str) -> str | None:
        values = self.header_values(name)
        return values[0] if values else None

    @cached_property
    def cookies(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for raw in self.header_values("cookie"):
            for item in raw.split(";"):
                if "=" in item:
                    k, v = item.split("=", 1)
                    out.setdefault(k.strip(), []).append(v.strip())
        return out

    @cached_property
    def body_text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @cached_property
    def form(self) -> dict[str, list[str]]:
        ctype = (self.header("content-type") or "").lower()
        out: dict[str, list[str]] = {}
        if "application/x-www-form-urlencoded" in ctype:
            for k, v in parse_qsl(self.body_text, keep_blank_values=True):
                out.setdefault(k, []).append(v)
        return out

    @cached_property
    def parts(self) -> list[Part]:
        ctype = self.header("content-type") or ""
        if "multipart/" not in ctype.lower() or "boundary=" not in ctype:
            return []
        boundary = ctype.split("boundary=", 1)[1].split(";")[0].strip().strip('"').encode()
        parts: list[Part] = []
        for chunk in self.body.split(b"--" + boundary)[1:]:
            if chunk.startswith(b"--"):
                break
            chunk = chunk[2:] if chunk.startswith(b"\r\n") else chunk
            head, _, body = chunk.partition(b"\r\n\r\n")
            if body.endswith(b"\r\n"):
                body = body[:-2]
            hdrs = []
            for line in head.decode("latin-1").split("\r\n"):
                if ":" in line:
                    k, v = line.split(":", 1)
                    hdrs.append((k.strip(), v.strip()))
            parts.append(Part(tuple(hdrs), body))
        return parts

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def absolute_url(self) -> str:
        return self.base_url + self.url

    @property
    def logged_ms(self) -> int:
        return int(self.logged_at * 1000)

    def to_json(self) -> dict[str, Any]:
        """WireMock's LoggedRequest JSON."""
        headers: dict[str, Any] = {}
        for k, v in self.headers:
            if k in headers:
                prev = headers[k]
                headers[k] = [*prev, v] if isinstance(prev, list) else [prev, v]
            else:
                headers[k] = v
        return {  # WireMock's LoggedRequest has no id of its own (the serve event has)
            "url": self.url,
            "absoluteUrl": self.absolute_url,
            "method": self.method,
            "clientIp": self.client_ip,
            "headers": headers,
            "cookies": {k: v[0] if len(v) == 1 else v for k, v in self.cookies.items()},
            "browserProxyRequest": False,
            "loggedDate": self.logged_ms,
            "bodyAsBase64": base64.b64encode(self.body).decode(),
            "body": self.body_text,
            "protocol": self.protocol,
            "scheme": self.scheme,
            "host": self.host,
            "port": self.port,
            "loggedDateString": _http_date(self.logged_at),
            "queryParams": {k: {"key": k, "values": v} for k, v in self.query.items()},
            "formParams": {k: {"key": k, "values": v} for k, v in self.form.items()},
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Request:
        """A request from LoggedRequest JSON (POST /__admin/near-misses/request).

        Raises InvalidStubError (a 422 from the admin API) for fields of the wrong type.
        """
        from testbed.stubs.errors import InvalidStubError

        url = obj.get("url") or "/"
        absolute = obj.get("absoluteUrl")
        if not isinstance(url, str) or (absolute is not None and not isinstance(absolute, str)):
            raise InvalidStubError("url and absoluteUrl must be strings", "/url")
        if absolute and not obj.get("url"):
            parts = urlsplit(absolute)
            url = parts.path + (f"?{parts.query}" if parts.query else "")
        raw_headers = obj.get("headers") or {}
        if not isinstance(raw_headers, dict):
            raise InvalidStubError("headers must be an object of name -> value or list of values", "/headers")
        headers: list[tuple[str, str]] = []
        for k, v in raw_headers.items():
            for value in v if isinstance(v, list) else [v]:
                headers.append((k, str(value)))
        if obj.get("bodyAsBase64"):
            try:
                body = base64.b64decode(str(obj["bodyAsBase64"]), validate=True)
            except ValueError as exc:
                raise InvalidStubError(f"bodyAsBase64 is not base64: {exc}", "/bodyAsBase64") from exc
        else:
            raw = obj.get("body") or ""
            body = (raw if isinstance(raw, str) else json.dumps(raw)).encode()
        method = obj.get("method") or "GET"
        if not isinstance(method, str):
            raise InvalidStubError("method must be a string such as GET", "/method")
        return cls(
            method=method.upper(),
            url=unquote(url) if " " in url else url,
            headers=tuple(headers),
            body=body,
        )


def _http_date(timestamp: float) -> str:
    from email.utils import formatdate  # only the admin API's journal needs it

    return formatdate(timestamp, usegmt=True)
