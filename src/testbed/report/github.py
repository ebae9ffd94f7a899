"""GitHub Actions annotations for failed tests (``::error file=...,line=...::message``), shown on the pull
request's diff and the run's summary when ``GITHUB_ACTIONS=true``."""

from __future__ import annotations

from typing import Any


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(entry: dict[str, Any], max_lines: int = 25) -> str:
    """One workflow command for a failed test: its file and line, the error and the transcript's section (the
    boundary events most relevant first)."""
    location = entry.get("location") or ("", None, "")
    path, line = str(location[0]), location[1]
    crash = entry.get("crash") or ""
    if isinstance(crash, list):
        crash = "\n".join(crash)
    lines = [str(crash).strip(), *str(entry.get("section") or "").strip().splitlines()]
    body = "\n".join(line for line in lines if line)[:4000] if any(lines) else ""
    body = "\n".join(body.splitlines()[:max_lines]) or "\n".join(str(entry.get("error", "")).splitlines()[-max_lines:])
    props = [f"file={_escape_property(path)}"] if path else []
    if isinstance(line, int):
        props.append(f"line={line + 1}")
    props.append(f"title={_escape_property(str(entry.get('nodeid', '')))}")
    return f"::error {','.join(props)}::{_escape_data(body)}"
