"""Suite hygiene: the unit-stage guard, order records and polluter bisection, the flaky check and
quarantine, honest durations, duration-balanced CI shards and the CI workflow files.

The pytest side is ``testbed.hygiene.plugin`` (its own ``pytest11`` entry point); the shell side is
``testbed bisect | ci | durations`` (``testbed.hygiene.commands``). Every other module here works without
pytest. Nothing is imported at package import: the plugin pulls in what an option needs, when it needs it.
"""

from __future__ import annotations
