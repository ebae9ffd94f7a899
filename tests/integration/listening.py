"""Which TCP addresses a process listens on (from /proc), for "loopback only" checks."""

from __future__ import annotations

import os
import socket
import struct
from pathlib import Path


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _decode(hex_addr: str) -> str:
    addr, port = hex_addr.split(":")
    raw = bytes.fromhex(addr)
    if len(raw) == 4:
        host = socket.inet_ntop(socket.AF_INET, struct.pack("<I", int(addr, 16)))
    else:
        words = struct.unpack("<4I", raw)
        host = socket.inet_ntop(socket.AF_INET6, struct.pack(">4I", *words))
    return f"{host}:{int(port, 16)}"


def listening(pid: int) -> set[str]:
    """'host:port' of every TCP socket ``pid`` listens on."""
    inodes = _socket_inodes(pid)
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            if parts[3] == "0A" and parts[9] in inodes:  # 0A = LISTEN
                found.add(_decode(parts[1]))
    return found


def not_loopback(addresses: set[str]) -> set[str]:
    return {a for a in addresses if not (a.startswith("127.") or a.startswith("::1:") or a.startswith("[::1]"))}
