"""pytest-django on testbed's databases (examples/django as the project): markers keep their meaning,
transactional tests truncate only what they wrote, several aliases, xdist, and no fixture name lost."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "django"


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    for item in EXAMPLE.iterdir():
        if item.name in ("__pycache__", ".pytest_cache"):
            continue
        target = pytester.path / item.name
        if item.is_dir():
            shutil.copytree(item, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(item, target)
    return pytester


@pytest.mark.parametrize("args", [[], ["-n", "2"], ["--reuse-db"], ["--create-db"]],
                         ids=["one", "xdist", "reuse-db", "create-db"])
def test_the_django_example_runs_on_testbed(project: pytest.Pytester, args: list[str]) -> None:
    result = project.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider", *args)
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines(["*testbed: Django's test databases are clones of testbed's migrated template*"])


def test_the_django_example_runs_on_a_kept_server(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    # Every alias needs its template on the kept server too (they were built only in a local cluster).
    monkeypatch.setenv("TESTBED_REUSE", "1")
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TESTBED_RUNS_DIR", str(tmp_path / "runs"))
    try:
        for _ in range(2):  # the first run starts the keeper, the second adopts it
            result = project.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider", "-n", "2")
            result.assert_outcomes(passed=8)
    finally:
        subprocess.run([sys.executable, "-m", "testbed.cli", "down"], check=False, capture_output=True)


def test_django_uses_testbeds_databases_not_its_own(project: pytest.Pytester) -> None:
    project.makepyfile(test_names='''
import pytest
from django.db import connections

@pytest.mark.django_db(databases=["default", "analytics"])
def test_names():
    names = {a: connections[a].settings_dict["NAME"] for a in ("default", "analytics")}
    assert names == {"default": "testbed_main", "analytics": "testbed__analytics_main"}, names
    with connections["default"].cursor() as c:
        c.execute("select count(*) from pg_database where datname like 'test!_%%' escape '!'")
        assert c.fetchone() == (0,)   # pytest-django created no test database of its own
''')
    project.runpytest_subprocess("-p", "no:randomly", "tests", "test_names.py").assert_outcomes(passed=9)


def test_a_changed_migration_rebuilds_the_template(project: pytest.Pytester) -> None:
    project.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=8)
    (project.path / "shop" / "migrations" / "0003_more.py").write_text('''
from decimal import Decimal
from django.db import migrations

def seed(apps, schema_editor):
    apps.get_model("shop", "Product").objects.create(sku="cap", price=Decimal("5.00"), stock=1)

class Migration(migrations.Migration):
    dependencies = [("shop", "0002_seed_catalogue")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
''')
    result = project.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=6, failed=2)  # the tests that count the catalogue see the new seed row
    result.stdout.fnmatch_lines(["*template cache built*"])


def test_without_django_settings_db_is_testbeds(pytester: pytest.Pytester) -> None:
    # pytest-django is installed here, but this project is not a Django one: `db` must not skip.
    (pytester.path / "migrations").mkdir()
    (pytester.path / "migrations" / "001.sql").write_text("CREATE TABLE t (x int);\n")
    pytester.makepyprojecttoml('[tool.testbed.postgres]\nmigrations = "migrations/"\n')
    pytester.makepyfile(test_t="def test_db(db, testbed_db):\n    assert db is testbed_db\n"
                               "    db.execute('insert into t values (1)')\n")
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1)
    assert "is defined by" not in result.stdout.str()
