"""CI workflows for the two-stage layout: ``testbed ci github`` and ``testbed ci gitlab``.

Stage 1 runs the unit tests (guarded: no network, database or server processes) and fails fast.
Stage 2 runs the integration tests in N shards of the CI system's own matrix, balanced by the durations
file; each shard uploads its JUnit report and the durations it measured, and a last job merges those
into the durations file kept in the CI cache, so the next run splits by current numbers. Scaling past
one machine is the CI system's matrix, not a scheduler of ours.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

SYSTEMS = ("github", "gitlab")
DEFAULT_PATHS = {"github": ".github/workflows/testbed.yml", "gitlab": ".gitlab-ci.yml"}


@dataclass(frozen=True)
class WorkflowOptions:
    """What the workflow needs to know about the project."""

    shards: int = 4
    python: str = "3.12"
    install: str = "pip install -e ."
    xdist: bool = False  # run each shard with `-n auto`
    durations: str = ".test_durations"


def detect_options(root: Path, *, shards: int, python: str, durations: str, install: str | None) -> WorkflowOptions:
    """Options from the project's pyproject.toml: an install command with its test extra, xdist or not."""
    extras: dict[str, list[str]] = {}
    text = ""
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        text = pyproject.read_text(encoding="utf-8")
        try:
            extras = tomllib.loads(text).get("project", {}).get("optional-dependencies", {}) or {}
        except tomllib.TOMLDecodeError:
            extras = {}
    if install is None:
        extra = next((name for name in ("test", "tests", "testing", "dev") if name in extras), None)
        install = f'pip install -e ".[{extra}]"' if extra else "pip install -e ."
    xdist = "pytest-xdist" in text or any("pytest-xdist" in d for deps in extras.values() for d in deps)
    return WorkflowOptions(shards=shards, python=python, install=install, xdist=xdist, durations=durations)


def _pytest_stage2(o: WorkflowOptions, index: str, total: str) -> str:
    parallel = " -n auto" if o.xdist else ""
    return (f"python -m pytest --testbed-stage=integration --testbed-shard={index}/{total}{parallel} "
            f"--testbed-durations-path={o.durations} --testbed-durations-out=reports/durations-{index}.json "
            f"--testbed-durations=15 --junitxml=reports/integration-{index}.xml")


def github_workflow(o: WorkflowOptions) -> str:
    """A GitHub Actions workflow (``.github/workflows/testbed.yml``)."""
    shards = ", ".join(str(i) for i in range(1, o.shards + 1))
    setup = f"""      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "{o.python}"
      - run: {o.install}
"""
    return f"""# Written by `testbed ci github`. Stage 1: unit tests, guarded (no network, database or server
# processes), no services. Stage 2: integration tests (testbed starts the real servers) in {o.shards} shards
# balanced by {o.durations}; the last job merges the durations the shards measured and caches them.
name: tests
on:
  push:
  pull_request:
jobs:
  unit:
    name: "stage 1: unit"
    runs-on: ubuntu-latest
    timeout-minutes: 10
    steps:
{setup}      - run: python -m pytest --testbed-stage=unit --junitxml=reports/unit.xml
      - uses: actions/upload-artifact@v4
        if: ${{{{ !cancelled() }}}}
        with:
          name: junit-unit
          path: reports/unit.xml
  integration:
    name: "stage 2: integration ${{{{ matrix.shard }}}}/{o.shards}"
    needs: unit
    runs-on: ubuntu-latest
    timeout-minutes: 30
    strategy:
      fail-fast: false
      matrix:
        shard: [{shards}]
    steps:
{setup}      - uses: actions/cache/restore@v4
        with:
          path: {o.durations}
          key: testbed-durations-${{{{ github.run_id }}}}
          restore-keys: |
            testbed-durations-
      - run: {_pytest_stage2(o, "${{ matrix.shard }}", str(o.shards))}
      - uses: actions/upload-artifact@v4
        if: ${{{{ !cancelled() }}}}
        with:
          name: junit-integration-${{{{ matrix.shard }}}}
          path: reports/integration-${{{{ matrix.shard }}}}.xml
      - uses: actions/upload-artifact@v4
        if: ${{{{ !cancelled() }}}}
        with:
          name: durations-${{{{ matrix.shard }}}}
          path: reports/durations-${{{{ matrix.shard }}}}.json
  durations:
    name: "keep the durations current"
    needs: integration
    if: ${{{{ !cancelled() }}}}
    runs-on: ubuntu-latest
    timeout-minutes: 10
    steps:
{setup}      - uses: actions/cache/restore@v4
        with:
          path: {o.durations}
          key: testbed-durations-${{{{ github.run_id }}}}
          restore-keys: |
            testbed-durations-
      - uses: actions/download-artifact@v4
        with:
          pattern: durations-*
          path: reports
          merge-multiple: true
      - run: testbed durations merge reports/durations-*.json --into {o.durations} --prune
      - uses: actions/cache/save@v4
        with:
          path: {o.durations}
          key: testbed-durations-${{{{ github.run_id }}}}
"""


def gitlab_pipeline(o: WorkflowOptions) -> str:
    """A GitLab CI pipeline (``.gitlab-ci.yml``)."""
    return f"""# Written by `testbed ci gitlab`. Stage 1: unit tests, guarded (no network, database or server
# processes), no services. Stage 2: integration tests (testbed starts the real servers) in {o.shards} parallel
# shards balanced by {o.durations}; the last job merges the durations the shards measured into the cache.
# The cache is shared between jobs only if the runners share a cache (a distributed cache, or one runner).
stages:
  - unit
  - integration
  - durations

default:
  image: python:{o.python}
  before_script:
    - {o.install}

unit:
  stage: unit
  script:
    - python -m pytest --testbed-stage=unit --junitxml=reports/unit.xml
  artifacts:
    when: always
    reports:
      junit: reports/unit.xml

integration:
  stage: integration
  parallel: {o.shards}
  cache:
    key: testbed-durations
    paths:
      - {o.durations}
    policy: pull
  script:
    - {_pytest_stage2(o, "$CI_NODE_INDEX", "$CI_NODE_TOTAL")}
  artifacts:
    when: always
    paths:
      - reports/durations-*.json
    reports:
      junit: reports/integration-*.xml

durations:
  stage: durations
  when: always
  needs:
    - integration
  cache:
    key: testbed-durations
    paths:
      - {o.durations}
    policy: pull-push
  script:
    - testbed durations merge reports/durations-*.json --into {o.durations} --prune
"""


def workflow(system: str, options: WorkflowOptions) -> str:
    if system == "github":
        return github_workflow(options)
    return gitlab_pipeline(options)
