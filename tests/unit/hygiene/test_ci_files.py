"""The CI workflows `testbed ci` writes (their schema validation is in tests/integration/hygiene)."""

from __future__ import annotations

from pathlib import Path

from testbed.hygiene.ci import WorkflowOptions, detect_options, github_workflow, gitlab_pipeline


def test_github_has_two_stages_shards_and_the_durations_cache() -> None:
    text = github_workflow(WorkflowOptions(shards=3, xdist=True))
    assert "python -m pytest --testbed-stage=unit --junitxml=reports/unit.xml" in text
    assert "shard: [1, 2, 3]" in text
    assert "--testbed-shard=${{ matrix.shard }}/3 -n auto" in text
    assert "needs: unit" in text and "needs: integration" in text
    assert "testbed durations merge reports/durations-*.json --into .test_durations --prune" in text
    assert "actions/cache/save@v4" in text


def test_gitlab_uses_parallel_and_junit_reports() -> None:
    text = gitlab_pipeline(WorkflowOptions(shards=5))
    assert "parallel: 5" in text
    assert "--testbed-shard=$CI_NODE_INDEX/$CI_NODE_TOTAL" in text
    assert " -n auto" not in text
    assert "junit: reports/integration-*.xml" in text


def test_install_command_uses_the_projects_test_extra(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n[project.optional-dependencies]\ntest = ["pytest", "pytest-xdist"]\n'
    )
    options = detect_options(tmp_path, shards=2, python="3.11", durations=".d", install=None)
    assert options.install == 'pip install -e ".[test]"'
    assert options.xdist
    assert detect_options(tmp_path / "none", shards=2, python="3.11", durations=".d", install=None).install == (
        "pip install -e ."
    )
