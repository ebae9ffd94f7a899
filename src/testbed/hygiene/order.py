"""The order record: which tests ran, in which order, on which worker, and what each left behind.

A failure that depends on order depends on what ran before it *in the same process*. pytest-randomly's
seed fixes the order of the collection, but under pytest-xdist the split of that order over workers is
decided at run time and cannot be replayed from the seed. So every process (each xdist worker, or the
only one) appends its own order to ``<pytest cache>/d/testbed-order/<worker>.jsonl`` as it goes, one
line per test start and finish, so even a crashed worker leaves its order behind. ``run.json`` beside
it says how the run was started (seed, arguments). ``testbed bisect`` reads it.

The isolation layer, which knows when a test left rows or connections behind, tells the record through
``record_pollution``; bisection then names the polluter without running anything.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ORDER_DIR = "testbed-order"
RUN_FILE = "run.json"


def order_folder(cache_dir: Path) -> Path:
    """Where the record lives inside a pytest cache folder (what ``config.cache.mkdir`` returns)."""
    return cache_dir / "d" / ORDER_DIR


class OrderWriter:
    """Appends one process's order, flushed line by line."""

    def __init__(self, folder: Path, worker: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.worker = worker
        self.path = folder / f"{worker}.jsonl"
        self._file: IO[str] | None = self.path.open("w", encoding="utf-8")

    def _write(self, entry: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.write(json.dumps(entry) + "\n")
            self._file.flush()

    def started(self, nodeid: str) -> None:
        self._write({"start": nodeid})

    def finished(self, nodeid: str, outcome: str) -> None:
        self._write({"end": nodeid, "outcome": outcome})

    def pollution(self, nodeid: str, description: str) -> None:
        self._write({"pollution": nodeid, "what": description})

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


_writer: OrderWriter | None = None


def set_writer(writer: OrderWriter | None) -> OrderWriter | None:
    """Make ``writer`` this process's record; returns the one it replaces (a pytest run inside a pytest
    run, as pytester runs them, puts the outer run's back when it ends)."""
    global _writer
    previous, _writer = _writer, writer
    return previous


def record_pollution(nodeid: str, description: str) -> None:
    """Record that the test ``nodeid`` left something behind that a later test could trip over.

    Called by the isolation layer when it finds rows, open connections or other state a test left (it
    still fails that test as before). ``testbed bisect`` then names this test as the polluter of a later
    failure on the same worker without bisecting. Does nothing when the order record is off.
    """
    if _writer is not None:
        _writer.pollution(nodeid, description)


def start_run(folder: Path, info: dict[str, Any]) -> None:
    """Forget the previous run's record and describe this one (called once per run, by the controller)."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.jsonl"):
        old.unlink()
    (folder / RUN_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class Pollution:
    nodeid: str
    what: str
    position: int  # how many tests had started on the worker when it was recorded


@dataclass
class WorkerOrder:
    """The tests one process ran, in order, and how each ended."""

    worker: str
    tests: list[str] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=dict)
    pollution: list[Pollution] = field(default_factory=list)

    def before(self, nodeid: str) -> list[str]:
        """The tests that ran before the last run of ``nodeid`` on this worker."""
        last = len(self.tests) - 1 - self.tests[::-1].index(nodeid)
        return self.tests[:last]


@dataclass
class OrderRecord:
    run: dict[str, Any]
    workers: dict[str, WorkerOrder]

    def worker_of(self, nodeid: str) -> WorkerOrder | None:
        """The worker where ``nodeid`` ran; where it ran on several (reruns), the one where it failed."""
        ran = [w for w in self.workers.values() if nodeid in w.tests]
        failed = [w for w in ran if w.outcomes.get(nodeid) == "failed"]
        found = failed or ran
        return found[0] if found else None

    def failed(self) -> list[str]:
        return [t for w in self.workers.values() for t in w.tests if w.outcomes.get(t) == "failed"]


def read_record(folder: Path) -> OrderRecord:
    """Read what the last recorded run left in ``folder``; empty when nothing was recorded."""
    run: dict[str, Any] = {}
    if (folder / RUN_FILE).is_file():
        run = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
    workers: dict[str, WorkerOrder] = {}
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        order = WorkerOrder(path.stem)
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:  # a worker killed mid-line
                continue
            if "start" in entry:
                order.tests.append(entry["start"])
            elif "end" in entry:
                order.outcomes[entry["end"]] = entry["outcome"]
            elif "pollution" in entry:
                order.pollution.append(Pollution(entry["pollution"], entry.get("what", ""), len(order.tests)))
        for nodeid in order.tests:
            order.outcomes.setdefault(nodeid, "crashed")  # started, never finished
        workers[order.worker] = order
    return OrderRecord(run, workers)


def default_cache_dir(root: Path) -> Path:
    """pytest's cache folder for the project at ``root`` (its ``cache_dir`` ini option, else .pytest_cache)."""
    import configparser
    import tomllib

    value: str | None = None
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
            value = data.get("tool", {}).get("pytest", {}).get("ini_options", {}).get("cache_dir")
        except tomllib.TOMLDecodeError:
            value = None
    for name, section in (("pytest.ini", "pytest"), ("tox.ini", "pytest"), ("setup.cfg", "tool:pytest")):
        if value is None and (root / name).is_file():
            parser = configparser.ConfigParser(interpolation=None)
            try:
                parser.read(root / name, encoding="utf-8")
            except configparser.Error:
                continue
            if parser.has_option(section, "cache_dir"):
                value = parser.get(section, "cache_dir")
    if value:
        return root / os.path.expandvars(value)
    return root / ".pytest_cache"
