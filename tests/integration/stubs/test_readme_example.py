"""The README's HTTP stubs example is a real test: it runs here, so it cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[3] / "README.md"


def test_readme_http_stub_example_passes(pytester: pytest.Pytester) -> None:
    section = README.read_text(encoding="utf-8").split("## HTTP stubs (WireMock-compatible)", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None, "the README's HTTP stubs section lost its example"
    pytester.makepyfile(test_readme=code.group(1))
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
