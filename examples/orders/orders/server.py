"""Serving the app on a real socket (uvicorn in a thread): what the integration suite talks to."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from fastapi import FastAPI


class RunningServer:
    """uvicorn on 127.0.0.1:<free port> in a background thread; ``url``; ``stop()``."""

    def __init__(self, app: FastAPI) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self._sock = sock
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the orders app did not start")
            time.sleep(0.002)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()
