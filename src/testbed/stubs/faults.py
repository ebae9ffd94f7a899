"""WireMock's four faults, done to the real socket so the client's own error handling runs."""

from __future__ import annotations

import os
import socket
import struct


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


def reset(sock: socket.socket) -> None:
    """CONNECTION_RESET_BY_PEER: close with SO_LINGER 0, so the kernel sends a TCP RST."""
    try:
        raw = getattr(sock, "_sock", sock)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    _close(sock)


def empty_response(sock: socket.socket) -> None:
    """EMPTY_RESPONSE: close the connection without writing a byte."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    _close(sock)


def malformed_chunk(sock: socket.socket, status: int = 200) -> None:
    """MALFORMED_RESPONSE_CHUNK: a valid status line and headers, then a broken chunk, then close."""
    try:
        sock.sendall(
            f"HTTP/1.1 {status} OK\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
            + b"lskdu018973t09sylgasjkfg1][]'./.sdlv"
        )
    except OSError:
        pass
    empty_response(sock)


def random_data(sock: socket.socket) -> None:
    """RANDOM_DATA_THEN_CLOSE: bytes that are not HTTP, then close."""
    try:
        sock.sendall(b"lskdu018973t09sylgasjkfg1][]'./.sdlv" + os.urandom(32).replace(b"\r\n", b"xx"))
    except OSError:
        pass
    empty_response(sock)


def apply(fault: str, sock: socket.socket) -> None:
    """Do ``fault`` to ``sock``; the connection is closed afterwards."""
    {
        "CONNECTION_RESET_BY_PEER": reset,
        "EMPTY_RESPONSE": empty_response,
        "MALFORMED_RESPONSE_CHUNK": malformed_chunk,
        "RANDOM_DATA_THEN_CLOSE": random_data,
    }[fault](sock)
