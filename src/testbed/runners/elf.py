"""Which folders an ELF executable or library loads shared libraries from (its RPATH and RUNPATH).

A binary staged for another user is copied with its install tree; a wheel's binaries also load
libraries from a folder beside that tree (auditwheel's ``<package>.libs``, reached through
``$ORIGIN/../../../pgserver.libs``), which must be copied too, at the same relative place.
"""

from __future__ import annotations

import os
import struct

_DT_RPATH = 15
_DT_RUNPATH = 29
_SHT_DYNAMIC = 6


def search_paths(path: str) -> list[str]:
    """The RPATH and RUNPATH entries of an ELF file, ``$ORIGIN`` resolved; [] for anything else."""
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"\x7fELF":
                return []
            data = b"\x7fELF" + f.read()
    except OSError:
        return []
    if len(data) < 64:
        return []
    is64 = data[4] == 2
    end = "<" if data[5] == 1 else ">"
    try:
        if is64:
            shoff, = struct.unpack_from(end + "Q", data, 0x28)
            shentsize, shnum = struct.unpack_from(end + "HH", data, 0x3A)
            sh_fmt, dyn_fmt = end + "IIQQQQIIQQ", end + "qQ"
        else:
            shoff, = struct.unpack_from(end + "I", data, 0x20)
            shentsize, shnum = struct.unpack_from(end + "HH", data, 0x2E)
            sh_fmt, dyn_fmt = end + "IIIIIIIIII", end + "iI"
        sections = [struct.unpack_from(sh_fmt, data, shoff + i * shentsize) for i in range(shnum)]
        entries: list[str] = []
        for sec in sections:
            if sec[1] != _SHT_DYNAMIC:
                continue
            offset, size, link = sec[4], sec[5], sec[6]
            strtab_offset = sections[link][4]
            step = struct.calcsize(dyn_fmt)
            for pos in range(offset, offset + size, step):
                tag, value = struct.unpack_from(dyn_fmt, data, pos)
                if tag == 0:
                    break
                if tag in (_DT_RPATH, _DT_RUNPATH):
                    raw = data[strtab_offset + value: data.index(b"\0", strtab_offset + value)]
                    entries += raw.decode("utf-8", "replace").split(":")
    except (struct.error, IndexError, ValueError):
        return []
    origin = os.path.dirname(os.path.realpath(path))
    out: list[str] = []
    for entry in entries:
        if not entry:
            continue
        resolved = os.path.normpath(entry.replace("$ORIGIN", origin).replace("${ORIGIN}", origin))
        if resolved not in out:
            out.append(resolved)
    return out


def external_library_dirs(tree: str) -> list[str]:
    """Existing folders outside ``tree`` that ELF files inside it load libraries from."""
    root = os.path.realpath(tree)
    found: list[str] = []
    for folder, _dirs, files in os.walk(root):
        for name in files:
            full = os.path.join(folder, name)
            if os.path.islink(full):
                continue
            for entry in search_paths(full):
                real = os.path.realpath(entry)
                inside = real == root or real.startswith(root + os.sep)
                if not inside and os.path.isdir(real) and real not in found:
                    found.append(real)
    return found
