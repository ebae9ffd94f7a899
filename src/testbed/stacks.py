"""Where the user's code is in a stack: cheap capture now, formatting (and line lookups) only when shown.

A pool checkout or a hung call happens deep inside SQLAlchemy, psycopg, threading or testbed itself; the
frame worth showing is the application's or the test's line that asked for it.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from pathlib import Path
from types import CodeType, FrameType

_TESTBED = str(Path(__file__).resolve().parent) + os.sep
# Libraries whose frames are plumbing between the user's line and the event.
_LIBRARIES = ("sqlalchemy", "psycopg", "psycopg_pool", "pymysql", "asyncpg", "pytest", "_pytest", "pluggy", "anyio",
              "starlette", "greenlet", "concurrent", "asyncio")
_STDLIB_FILES = ("threading.py", "queue.py", "contextlib.py", "selectors.py")


def _is_plumbing(filename: str) -> bool:
    if filename.startswith(_TESTBED) or filename.startswith("<frozen"):
        return True
    parts = Path(filename).parts
    if len(parts) > 1 and parts[-2] == "bin":  # a console script (.venv/bin/pytest)
        return True
    return any(p in _LIBRARIES for p in parts) or parts[-1] in _STDLIB_FILES


class Stack:
    """A captured stack as (code, line) pairs: cheap to take, turned into frames only when shown."""

    __slots__ = ("_frames",)

    def __init__(self, frames: tuple[tuple[CodeType, int], ...] = ()) -> None:
        self._frames = frames  # innermost last

    def summary(self) -> traceback.StackSummary:
        return traceback.StackSummary.from_list(
            [traceback.FrameSummary(code.co_filename, line, code.co_name) for code, line in self._frames])

    def __len__(self) -> int:
        return len(self._frames)


def capture(skip: int = 1, limit: int = 40) -> Stack:
    """The caller's stack, innermost last, without reading source lines (a few microseconds)."""
    frame: FrameType | None = sys._getframe(skip + 1)
    frames: list[tuple[CodeType, int]] = []
    while frame is not None and len(frames) < limit:
        frames.append((frame.f_code, frame.f_lineno))
        frame = frame.f_back
    frames.reverse()
    return Stack(tuple(frames))


def user_frames(stack: traceback.StackSummary | Stack, keep: int = 6) -> list[traceback.FrameSummary]:
    """The innermost ``keep`` frames that are not library plumbing (all innermost frames if none are)."""
    if isinstance(stack, Stack):
        stack = stack.summary()
    frames = [f for f in stack if not _is_plumbing(f.filename)]
    return (frames or list(stack))[-keep:]


def format_frames(frames: list[traceback.FrameSummary], indent: str = "    ") -> str:
    """Frames as traceback lines (file, line, function, source), innermost last."""
    out = []
    for f in frames:
        out.append(f'{indent}File "{f.filename}", line {f.lineno}, in {f.name}')
        line = (f.line or "").strip()
        if line:
            out.append(f"{indent}  {line}")
    return "\n".join(out)


def of_thread(thread: threading.Thread, keep: int = 6, indent: str = "    ") -> str:
    """Where ``thread`` is now, in the user's code (for errors about calls that hang)."""
    frame = sys._current_frames().get(thread.ident or -1)
    if frame is None:
        return f"{indent}(no stack: the thread is gone)"
    stack = traceback.StackSummary.extract(traceback.walk_stack(frame), limit=60)
    stack.reverse()
    return format_frames(user_frames(stack, keep), indent)
