"""testbed's pytest plugin (entry point ``testbed``): options, one marker, fixtures per family, the xdist
hand-off and one terminal summary. Everything here calls testbed's library layers; nothing else.

- ``options``: command-line options, the ``testbed`` marker (validated by one signature), SIGTERM.
- ``session``: the run's settings and the servers this process uses (started here, or by the xdist
  controller); ``xdist``: the controller's service broker and the one wire format workers receive.
- fixtures by family: ``services`` (every engine's server, URL and client fixtures, derived from the
  registry), ``sql`` (PostgreSQL and MariaDB/MySQL databases and isolation), ``http`` (stubs),
  ``events`` (broker capture).
- ``faults``: what a test that ran out of pool connections held, and where (pool pressure).
- ``summary``: the "testbed services" section at the end of the run.
- ``testbed.report.plugin``: the per-test transcript (failure sections, JUnit, HTML report, query budgets).
"""

from __future__ import annotations

import sys
from typing import Any

PARTS = (
    "testbed.plugin.options",
    "testbed.plugin.session",
    "testbed.plugin.xdist",
    "testbed.plugin.env",
    "testbed.plugin.services",
    "testbed.plugin.sql",
    "testbed.plugin.asyncio",
    "testbed.plugin.django",
    "testbed.plugin.http",
    "testbed.plugin.events",
    "testbed.plugin.faults",
    "testbed.plugin.summary",
    "testbed.report.plugin",
)


def pytest_plugin_registered(plugin: object, manager: Any) -> None:
    # The parts are registered here rather than listed in ``pytest_plugins``: pytest looks each name listed
    # there up among every installed distribution's entry points first, a scan of all their metadata per
    # name (a dozen names cost more than the rest of the plugin's start).
    if plugin is sys.modules[__name__]:
        import importlib

        _not_rewritten(manager)
        for name in PARTS:
            if not manager.has_plugin(name) and not manager.is_blocked(name):
                manager.register(importlib.import_module(name), name)


def _not_rewritten(manager: Any) -> None:
    """pytest rewrites the asserts of every module of a distribution that declares a pytest plugin (and of a
    plugin named with ``-p``, and its submodules), so testbed's modules would be imported through its
    rewriting hook: about twice the cost of a plain import, 8-10 ms of a Django run's database set-up and
    several of every run's start. Rewriting serves test code, where a failed assert explains itself;
    testbed's asserts state internal invariants only, so its modules are imported plainly. pytest has no
    public switch for this: without the attribute (another pytest) nothing changes."""
    hook = getattr(manager, "rewrite_hook", None)
    marked = getattr(hook, "_must_rewrite", None)
    if isinstance(marked, set):
        for name in [n for n in marked if n == "testbed" or n.startswith("testbed.")]:
            marked.discard(name)
