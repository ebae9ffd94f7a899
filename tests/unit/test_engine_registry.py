"""The registry's built-in entries (read before any engine module is imported) agree with the engines."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from testbed import engines


@pytest.mark.parametrize("name", list(engines.BUILT_IN))
def test_a_built_in_entry_describes_its_engine(name: str) -> None:
    entry, engine = engines.BUILT_IN[name], engines.get(name)
    assert engine.name == name
    assert (entry.label, entry.url_fixture, entry.client_fixture, entry.plugin, entry.programs, entry.runners) == (
        engine.label, engine.url_fixture, engine.client_fixture, engine.plugin, engine.programs, engine.runners)
    assert engines.settings_class(name) is engine.settings_class


def test_loading_the_plugin_imports_no_engine_and_no_driver(tmp_path: object) -> None:
    # What a unit-only run pays for having testbed installed: no engine module, no runner, no driver; the
    # configured tables are validated all the same (the settings classes live apart from the engines).
    code = (
        "import sys, pytest\n"
        "pytest.main(['-q', '-p', 'no:cacheprovider', '-p', 'testbed.plugin', '-p', 'testbed.hygiene.plugin',"
        " '--collect-only', '-p', 'no:randomly'])\n"
        "print(sorted(m for m in sys.modules if m.startswith(('testbed.engines.', 'testbed.runners', 'psycopg',"
        " 'sqlalchemy', 'redis', 'pymysql')) and not m.startswith('testbed.engines.settings')))\n"
    )
    (tmp_path / "pyproject.toml").write_text(  # type: ignore[operator]
        '[tool.testbed.postgres]\nmigrations = "migrations"\n[tool.testbed.redis]\nversion = "7"\n')
    (tmp_path / "test_x.py").write_text("def test_x():\n    pass\n")  # type: ignore[operator]
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout


@pytest.mark.parametrize(("test", "recorded"), [("def test_x():\n    pass\n", False),
                                                 ("def test_x(http_stub):\n    pass\n", True)])
def test_only_tests_that_can_cross_a_boundary_get_a_transcript(tmp_path: object, test: str, recorded: bool) -> None:
    # A unit test in a run that uses no service pays nothing for transcripts, not even their import; a test
    # asking for one of testbed's fixtures is recorded.
    code = (
        "import sys, pytest\n"
        "pytest.main(['-q', '-p', 'no:cacheprovider', '-p', 'testbed.plugin', '-p', 'no:randomly'])\n"
        "print('testbed.report.transcript' in sys.modules)\n"
    )
    (tmp_path / "test_x.py").write_text(test)  # type: ignore[operator]
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}, check=True)
    assert out.stdout.strip().splitlines()[-1] == str(recorded), out.stdout


def test_the_library_is_imported_without_assertion_rewriting(tmp_path: object) -> None:
    # pytest marks the whole package of a plugin's distribution (here through `-p testbed`, the entry point)
    # for assertion rewriting, which doubles the cost of importing testbed's modules: the plugin's parts at
    # start, the library when a fixture first needs it. Test code is still rewritten.
    (tmp_path / "test_x.py").write_text(  # type: ignore[operator]
        "import sys\n\ndef test_x():\n"
        "    import testbed.isolation.statement_log as lib\n"
        "    print('LOADERS', type(lib.__spec__.loader).__name__,"
        " type(sys.modules['testbed.plugin.sql'].__spec__.loader).__name__,"
        " type(sys.modules[__name__].__spec__.loader).__name__)\n")
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "-p", "testbed",
                          "-p", "no:randomly", "test_x.py"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}, check=True)
    assert "LOADERS SourceFileLoader SourceFileLoader AssertionRewritingHook" in out.stdout, out.stdout
