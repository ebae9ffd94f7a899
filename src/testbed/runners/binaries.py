"""Finding server binaries: explicit path, PATH, the system's usual folders, pip-installed bundles.

Engine modules say which names and folders to look in and how to read a version; this module does the
looking, remembers what it saw (for `testbed doctor` and for errors), and never substitutes a binary of
another version than the one pinned.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


@dataclass(frozen=True)
class Candidate:
    """One binary found, its version and where it came from."""

    path: str
    version: str  # full version, e.g. "16.2"
    source: str  # "config", "PATH", "system", "pip:<package>"

    @property
    def major(self) -> str:
        return major_of(self.version)


def major_of(version: str) -> str:
    """'16.2' -> '16'; '7.0.15' -> '7'."""
    return version.split(".")[0]


def version_matches(pinned: str | None, version: str) -> bool:
    """A pin matches by prefix of dotted components: '16' matches '16.2', '7.0' matches '7.0.15'."""
    if not pinned:
        return True
    want = pinned.split(".")
    have = version.split(".")
    return have[: len(want)] == want


@lru_cache(maxsize=256)
def run_version(path: str, flag: str = "--version") -> str:
    """The output of ``<path> --version``, remembered across runs per (real path, size, mtime, flag).

    Asking a server binary its version costs a process start (tens of milliseconds, more for a script);
    a binary does not change without its size or mtime changing.
    """
    import json
    import secrets

    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except OSError:
        return ""
    key = f"{real}|{st.st_size}|{st.st_mtime_ns}|{flag}"
    store: Path | None
    known: dict[str, str] = {}
    try:
        from testbed.runners.workspace import cache_root

        store = cache_root() / "versions.json"
        if store.exists():
            known = json.loads(store.read_text())
    except Exception:  # an unusable cache: ask the binary, remember nothing
        store, known = None, {}
    if key in known:
        return known[key]
    try:
        out = subprocess.run([path, flag], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    text = (out.stdout or out.stderr).strip()
    if text and store is not None:
        known[key] = text
        tmp = store.with_name(f".versions-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            tmp.write_text(json.dumps(known))
            tmp.replace(store)
        except OSError:
            tmp.unlink(missing_ok=True)
    return text


def parse_version(text: str, pattern: str = r"(\d+(?:\.\d+)+|\d+)") -> str:
    m = re.search(pattern, text)
    return m.group(1) if m else ""


def which_all(name: str) -> list[str]:
    """Every executable called ``name`` on PATH, in PATH order."""
    found: list[str] = []
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        p = os.path.join(folder, name)
        if os.path.isfile(p) and os.access(p, os.X_OK) and p not in found:
            found.append(p)
    return found


def glob_executables(patterns: Iterable[str]) -> list[str]:
    found: list[str] = []
    for pattern in patterns:
        for p in sorted(glob.glob(pattern), reverse=True):  # newest version folder first
            if os.path.isfile(p) and os.access(p, os.X_OK) and p not in found:
                found.append(p)
    return found


def dedupe(candidates: Iterable[Candidate]) -> list[Candidate]:
    seen: set[str] = set()
    out: list[Candidate] = []
    for c in candidates:
        real = os.path.realpath(c.path)
        if real in seen:
            continue
        seen.add(real)
        out.append(c)
    return out


def probe(paths: Iterable[str], source: str, version_of: Callable[[str], str]) -> list[Candidate]:
    out = []
    for p in paths:
        v = version_of(p)
        if v:
            out.append(Candidate(path=p, version=v, source=source))
    return out


def describe(candidates: Iterable[Candidate]) -> str:
    lines = [f"  - {c.path} (version {c.version}, from {c.source})" for c in candidates]
    return "\n".join(lines) if lines else "  (none)"


def shutil_which(name: str) -> str | None:
    return shutil.which(name)
