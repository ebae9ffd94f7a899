"""Webhooks: after a stub serves a request, call another URL (``postServeActions`` / ``serveEventListeners``
named "webhook"), e.g. the asynchronous callback of a payment gateway. Parameters are templated, with the
triggering request as ``originalRequest``."""

from __future__ import annotations

import base64
import http.client
import json
import random
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from testbed.stubs.errors import InvalidStubError
from testbed.stubs.request import Request


def webhook_parameters(raw: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The parameters of every webhook of a stub mapping (both the list and the legacy map form)."""
    out: list[dict[str, Any]] = []
    for key in ("postServeActions", "serveEventListeners"):
        actions = raw.get(key)
        if actions is None:
            continue
        if isinstance(actions, dict):  # legacy: {"webhook": {...}}
            actions = [{"name": name, "parameters": params} for name, params in actions.items()]
        if not isinstance(actions, list):
            raise InvalidStubError(f'{key} must be a list of {{"name": ..., "parameters": ...}}', f"/{key}")
        for i, action in enumerate(actions):
            if not isinstance(action, dict) or action.get("name") != "webhook":
                name = action.get("name") if isinstance(action, dict) else action
                raise InvalidStubError(
                    f'{key}: only the "webhook" action is supported, got {json.dumps(name)}',
                    f"/{key}/{i}/name",
                )
            params = action.get("parameters") or {}
            if not isinstance(params, dict) or not isinstance(params.get("url"), str):
                raise InvalidStubError("a webhook needs parameters with a url", f"/{key}/{i}/parameters/url")
            out.append(params)
    return out


def _delay_ms(delay: Any) -> float:
    if not isinstance(delay, dict):
        return 0.0
    if delay.get("type") == "uniform":
        return random.uniform(float(delay.get("lower", 0)), float(delay.get("upper", 0)))
    return float(delay.get("milliseconds", 0))


def send(params: Mapping[str, Any], request: Request) -> int:
    """Send one webhook now; returns the status it got (raises OSError if it could not connect)."""
    from testbed.stubs.templating import render

    def tpl(text: str) -> str:
        return render(text, request) if "{{" in text else text

    url = tpl(str(params["url"]))
    parts = urlsplit(url)
    body: bytes | None = None
    if params.get("body") is not None:
        raw = params["body"]
        body = tpl(raw if isinstance(raw, str) else json.dumps(raw)).encode()
    elif params.get("base64Body") is not None:
        body = base64.b64decode(str(params["base64Body"]))
    headers: dict[str, str] = {}
    for name, value in (params.get("headers") or {}).items():
        headers[str(name)] = tpl(", ".join(value) if isinstance(value, list) else str(value))
    conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = conn_cls(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request(str(params.get("method", "POST")).upper(), target, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def fire(params_list: list[dict[str, Any]], request: Request, errors: list[str]) -> None:
    """Send each webhook from its own thread, after its delay; failures are logged, as WireMock does."""

    def run(params: dict[str, Any]) -> None:
        time.sleep(_delay_ms(params.get("delay")) / 1000)
        try:
            send(params, request)
        except Exception as exc:  # the stubbed call already succeeded; report, never raise into the server
            message = f"testbed stub webhook to {params.get('url')} failed: {exc}"
            print(message, file=sys.stderr)
            errors.append(message)

    for params in params_list:
        threading.Thread(target=run, args=(params,), daemon=True, name="testbed-stub-webhook").start()
