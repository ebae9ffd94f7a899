"""The transcript in pytest's JUnit XML (``--junitxml``): a failed test's whole transcript as its
``<system-out>`` (GitLab and GitHub test reports show it), and, where the schema allows properties on a
test case (the xunit1 family), counts of its boundary events. xunit2 has no per-test properties: there
the run gets one suite-level property and the counts stay in system-out."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

MAX_SYSTEM_OUT = 200_000  # characters of one test's transcript


def add_to_testcase(xml: Any, report: Any) -> None:
    """Add the transcript to the test case of ``report`` (a teardown report) in pytest's LogXML."""
    full = getattr(report, "testbed_full", None)
    counts: dict[str, int] = getattr(report, "testbed_counts", None) or {}
    reporter = xml.node_reporter(report)
    if xml.family == "xunit1":
        for name, n in sorted(counts.items()):
            reporter.add_property(f"testbed.{name.replace(' ', '_')}", n)
    elif not getattr(xml, "_testbed_property", False):
        xml.add_global_property("testbed.transcript", "system-out of failed tests")
        xml._testbed_property = True
    if full:
        node = ET.Element("system-out")
        node.text = _xml_safe(full[:MAX_SYSTEM_OUT])
        reporter.nodes.append(node)


def _xml_safe(text: str) -> str:
    # XML 1.0 forbids most control characters; a statement or a body may carry them.
    return "".join(ch if ch in "\t\n\r" or ord(ch) >= 0x20 else f"\\x{ord(ch):02x}" for ch in text)
