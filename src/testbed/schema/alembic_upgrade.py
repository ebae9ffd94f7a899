"""``alembic upgrade head`` in a child process, pointed at the template database.

A project's ``env.py`` often imports the application (its settings, its models, an engine built at import
time from the settings). Run in the test process, those modules would stay imported there, bound to the
template database the migration saw (or, before the hand-off, to whatever database the settings named). In
a child process they load, migrate and go; the test process imports them later, with its own worker's
settings. The child sees the URL in ``sqlalchemy.url`` and ``TESTBED_DATABASE_URL`` and, with
``[tool.testbed.env]``, the hand-off variables rendered over the template (set by the engine around it).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from testbed.errors import ConfigError, MigrationError
from testbed.schema.migrations import URL_ENV

_FAILED = "testbed-alembic-failed: "  # the child's last stdout line when `upgrade` raised


def upgrade(ini: Path, script_location: Path, sqlalchemy_url: str, boundary: str) -> None:
    """Run ``alembic upgrade head`` for ``ini`` on ``sqlalchemy_url`` in a child process; MigrationError
    with the child's exception (or the end of its output) when it fails."""
    if importlib.util.find_spec("alembic") is None:
        raise ConfigError("migrations = 'alembic' needs Alembic: pip install 'pytest-testbed[alembic]'.")
    env = dict(os.environ)
    env[URL_ENV] = sqlalchemy_url  # not on the command line: it carries the password
    # The same imports as here: the project's folders pytest (or a conftest) put on sys.path.
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    done = subprocess.run([sys.executable, "-m", __name__, str(ini), str(script_location)], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    if done.returncode == 0:
        return
    reported = [line[len(_FAILED):] for line in done.stdout.splitlines() if line.startswith(_FAILED)]
    if reported:
        failure = json.loads(reported[-1])
        detail = f"{failure['type']}: {failure['message']}"
    else:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        detail = f"the alembic process exited with {done.returncode}:\n{tail}"
    raise MigrationError(f"alembic upgrade head failed ({ini}): {detail}", boundary=boundary)


def main(argv: list[str]) -> int:
    ini, script_location = argv
    from alembic import command
    from alembic.config import Config

    cfg = Config(ini)
    cfg.set_main_option("script_location", script_location)
    # configparser interpolation: a '%' in the password must be doubled.
    cfg.set_main_option("sqlalchemy.url", os.environ[URL_ENV].replace("%", "%%"))
    try:
        command.upgrade(cfg, "head")
    except Exception as exc:  # reported to the parent, which raises MigrationError with it
        sys.stdout.flush()
        print(_FAILED + json.dumps({"type": type(exc).__name__, "message": str(exc)}), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
