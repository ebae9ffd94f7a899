"""[tool.testbed.env]: settings handed to apps that read them at import time, before conftest files load."""

from __future__ import annotations

import pytest

APP = '''
import os
# Like many apps: settings read once, at import time (pydantic-settings, Django settings, module constants).
DATABASE_URL = os.environ["DATABASE_URL"]
REDIS_URL = os.environ["REDIS_URL"]
PAYMENT_BASE_URL = os.environ["PAYMENT_BASE_URL"]
PG_PORT = int(os.environ["PG_PORT"])
'''

CONFTEST = '''
import app  # imported while conftest loads: the values must already be there
'''

TESTS = '''
import psycopg, redis, httpx, os
import app

def test_database_is_this_workers(postgres, db, request):
    assert app.DATABASE_URL.startswith("postgresql+psycopg://")
    assert app.DATABASE_URL.replace("+psycopg", "") == postgres.url
    # (not PYTEST_XDIST_WORKER: a run inside an xdist worker of testbed's own suite inherits it)
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    assert app.DATABASE_URL.endswith("/testbed_" + worker)
    with psycopg.connect(postgres.url) as conn:
        assert conn.execute("select count(*) from items").fetchone() == (0,)

def test_redis_and_stub(redis_url, http_stub):
    assert app.REDIS_URL == redis_url
    from testbed.stubs import get
    http_stub.stub_for(get("/ping").will_return(body="pong"))
    assert httpx.get(app.PAYMENT_BASE_URL + "/ping").text == "pong"

def test_port(testbed_postgres_server):
    assert app.PG_PORT == testbed_postgres_server.port
'''

PYPROJECT = '''
[tool.testbed.postgres]
migrations = "migrations/"

[tool.testbed.env]
DATABASE_URL = "{postgres.sqlalchemy_url}"
REDIS_URL = "{redis.url}"
PAYMENT_BASE_URL = "{http.url}"
PG_PORT = "{postgres.port}"
'''


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    (pytester.path / "migrations").mkdir()
    (pytester.path / "migrations" / "001.sql").write_text("CREATE TABLE items (id int);\n")
    pytester.makepyprojecttoml(PYPROJECT)
    pytester.makepyfile(app=APP)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_app=TESTS)
    return pytester


@pytest.mark.parametrize("args", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_env_is_set_before_conftest_import_per_worker(project: pytest.Pytester, args: list[str]) -> None:
    result = project.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider", *args)
    result.assert_outcomes(passed=3)


def test_an_unknown_placeholder_names_the_valid_ones(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.testbed.env]\nX = "{redis.uri}"\n')
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess()
    assert result.ret != 0
    result.stderr.fnmatch_lines(["ERROR: *[[]tool.testbed.env] X: {redis.uri} is not known; redis offers: *url*"])


def test_an_unknown_service_is_an_error(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.testbed.env]\nX = "{postgress.url}"\n')
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess()
    assert result.ret != 0
    result.stderr.fnmatch_lines(
        ["ERROR: *unknown service 'postgress'*valid: postgres, mysql, redis, nats, rabbitmq, s3, http*"])


# The FastAPI full-stack template's shape: settings from POSTGRES_* at import time, an engine built at import
# time from them, and an Alembic env.py that imports those settings and ignores sqlalchemy.url.
SETTINGS_APP = '''
import os
import sqlalchemy

# Outside tests the settings name a server that is not there (port 1): a migration sent there fails.
URL = "postgresql+psycopg://{}:{}@{}:{}/{}".format(
    os.environ.get("POSTGRES_USER", "app"), os.environ.get("POSTGRES_PASSWORD", ""),
    os.environ.get("POSTGRES_SERVER", "127.0.0.1"), os.environ.get("POSTGRES_PORT", "1"),
    os.environ.get("POSTGRES_DB", "app"))
engine = sqlalchemy.create_engine(URL, poolclass=sqlalchemy.pool.NullPool)
'''

ENV_PY_FROM_SETTINGS = '''
from alembic import context
from settings_app import engine  # not context.config's sqlalchemy.url

with engine.connect() as connection:
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()
'''

SETTINGS_TESTS = '''
import sqlalchemy
import settings_app

def test_the_app_engine_is_this_workers_migrated_database(postgres, request):
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    assert settings_app.engine.url.database == "testbed_" + worker   # not the template the migration saw
    with settings_app.engine.connect() as conn:
        assert conn.execute(sqlalchemy.text("select count(*) from widgets")).scalar() == 0
        assert conn.execute(sqlalchemy.text("select version_num from alembic_version")).scalar() == "0001"
'''

SETTINGS_PYPROJECT = '''
[tool.testbed.postgres]
migrations = "alembic"

[tool.testbed.env]
POSTGRES_SERVER = "{postgres.host}"
POSTGRES_PORT = "{postgres.port}"
POSTGRES_USER = "{postgres.user}"
POSTGRES_PASSWORD = "{postgres.password}"
POSTGRES_DB = "{postgres.database}"
'''


@pytest.mark.parametrize("args", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_an_env_py_that_imports_the_apps_settings_migrates_the_template(
        pytester: pytest.Pytester, args: list[str]) -> None:
    (pytester.path / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s/alembic\n")
    versions = pytester.path / "alembic" / "versions"
    versions.mkdir(parents=True)
    (pytester.path / "alembic" / "env.py").write_text(ENV_PY_FROM_SETTINGS)
    (pytester.path / "alembic" / "script.py.mako").write_text("")
    # A fresh migration per run: the template is built in this run, not found in the cache.
    (versions / "0001_widgets.py").write_text(
        f"from alembic import op\nrevision = '0001'\ndown_revision = None\n# {pytester.path}\n\n"
        "def upgrade():\n    op.execute('CREATE TABLE widgets (id integer PRIMARY KEY)')\n")
    pytester.makepyprojecttoml(SETTINGS_PYPROJECT)
    pytester.makepyfile(settings_app=SETTINGS_APP)
    pytester.makeconftest("import settings_app  # the engine is built while conftest files load\n")
    pytester.makepyfile(test_app=SETTINGS_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider", *args)
    result.assert_outcomes(passed=1)


def test_a_django_managed_database_cannot_be_handed_over_and_the_error_says_what_to_do(
        pytester: pytest.Pytester) -> None:
    # Django's settings must import before its migrate can build the template: a cycle, named at once.
    pytester.makepyprojecttoml('[tool.testbed.postgres]\nmigrations = "django"\n\n'
                               '[tool.testbed.env]\nDATABASE_URL = "{postgres.url}"\n')
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *DATABASE_URL names {postgres...}, whose migrations = 'django'*"
                                 "give it a constant: DATABASE_URL = *"])
