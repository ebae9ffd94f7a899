"""A WireMock root directory: stub mappings under mappings/ (recursive) and response bodies under __files/."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed.stubs import bounded_json
from testbed.stubs.errors import InvalidStubError
from testbed.stubs.mapping import StubMapping, parse_mapping

_COMMENTS = re.compile(r'("(?:[^"\\]|\\.)*")|//[^\n]*|/\*.*?\*/', re.DOTALL)


def _strip_comments(text: str) -> str:
    # WireMock's JSON reader accepts comments; keep string literals intact while dropping them.
    return _COMMENTS.sub(lambda m: m.group(1) or "", text)


def parse_mapping_document(data: Any, source: str) -> list[StubMapping]:
    """One mapping, or ``{"mappings": [...]}``, from an already parsed JSON document."""
    if isinstance(data, dict) and isinstance(data.get("mappings"), list):
        return [
            parse_mapping(m, source=source, pointer=f"/mappings/{i}") for i, m in enumerate(data["mappings"])
        ]
    return [parse_mapping(data, source=source)]


def read_mapping_file(path: Path) -> list[StubMapping]:
    """The stubs of one mapping file; InvalidStubError names the file and the field."""
    text = path.read_text(encoding="utf-8")
    try:
        data = bounded_json.loads(text)
    except ValueError:
        try:
            data = bounded_json.loads(_strip_comments(text))
        except ValueError as exc:
            raise InvalidStubError(f"not valid JSON: {exc}", source=str(path)) from exc
    return parse_mapping_document(data, str(path))


@dataclass
class LoadResult:
    """The stubs a root directory holds, and the files that could not be loaded (with why)."""

    stubs: list[StubMapping] = field(default_factory=list)
    errors: list[InvalidStubError] = field(default_factory=list)


def load_mappings(folder: Path) -> LoadResult:
    """Every ``*.json`` under ``folder`` (recursive, sorted); a bad file is reported, the rest loads."""
    result = LoadResult()
    if not folder.is_dir():
        return result
    for path in sorted(folder.rglob("*.json")):
        try:
            result.stubs.extend(read_mapping_file(path))
        except InvalidStubError as exc:
            result.errors.append(exc)
        except OSError as exc:
            result.errors.append(InvalidStubError(f"cannot read: {exc}", source=str(path)))
    return result


def body_file(root: Path | None, name: str) -> Path:
    """The file ``bodyFileName`` names, under ``root/__files``; refuses paths that escape it."""
    if root is None:
        raise InvalidStubError(
            f"bodyFileName {name!r} needs a root directory with __files/ "
            "(StubServer(root_dir=...) or --root-dir)"
        )
    base = (root / "__files").resolve()
    target = (base / name).resolve()
    if base not in target.parents and target != base:
        raise InvalidStubError(f"bodyFileName {name!r} points outside {base}")
    return target


def save_mapping(root: Path, stub: StubMapping) -> Path:
    """Write one stub to ``root/mappings`` the way WireMock's POST /__admin/mappings/save does."""
    folder = root / "mappings"
    folder.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-zA-Z0-9_]+", "-", stub.name or "mapping").strip("-").lower() or "mapping"
    path = folder / f"{slug}-{stub.id}.json"
    path.write_text(json.dumps(stub.to_json(), indent=2), encoding="utf-8")
    return path
