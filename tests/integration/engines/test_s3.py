"""S3 as an engine added by files only (engines/s3.py + one registry line): moto's server as a local process,
an account per xdist worker, buckets a test created removed after it, `testbed up s3`, doctor, existing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import testbed

S3_SUITE = """
import os

def test_a_creates(s3, s3_url, testbed_s3_server):
    name = testbed_s3_server.bucket_name("orders")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="o-1.json", Body=b"{}")
    assert s3_url.startswith("http://127.0.0.1:")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == [name]

def test_b_starts_empty(s3):
    assert s3.list_buckets()["Buckets"] == []

def test_c_app_reads_the_same_api(testbed_s3_server, s3):
    import boto3
    env = testbed_s3_server.env()
    app = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_DEFAULT_REGION"],
                       aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    app.create_bucket(Bucket=testbed_s3_server.bucket_name("c"))
    assert len(s3.list_buckets()["Buckets"]) == 1
"""


@pytest.mark.parametrize("args", [["-p", "no:randomly"], ["-p", "no:randomly", "-n", "2"]], ids=["one", "xdist"])
def test_s3_fixtures_isolate_tests_and_workers(pytester: pytest.Pytester, args: list[str]) -> None:
    pytester.makepyfile(test_forward=S3_SUITE, test_again=S3_SUITE)
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*testbed services*", "S3 (moto) * from * (*)*"])


def test_library_and_existing_runner(pytester: pytest.Pytester) -> None:
    with testbed.s3() as shared:  # stands in for a team's S3 (MinIO, LocalStack...)
        s3 = shared.endpoint.client()
        s3.create_bucket(Bucket="theirs")
        e = shared.endpoint
        pytester.makepyprojecttoml(
            f'[tool.testbed.s3]\nrunner = "existing"\nurl = "{e.url}"\naccess_key = "{e.access_key}"\n'
            f'secret_key = "{e.secret_key}"\nbucket_prefix = "tb-"\n')
        pytester.makepyfile(test_x="""
def test_creates(s3):
    s3.create_bucket(Bucket="tb-mine")
    s3.create_bucket(Bucket="not-mine-either")
""")
        pytester.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=1)
        names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
        assert names == {"theirs", "not-mine-either"}, names  # only what matches bucket_prefix was removed


def test_up_and_doctor_know_s3(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.testbed]\n")
    out = subprocess.run([sys.executable, "-m", "testbed.cli", "--root", str(tmp_path), "doctor", "s3"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "S3 (moto) [s3]" in out.stdout and "would use:" in out.stdout and "pip:moto" in out.stdout
    proc = subprocess.Popen([sys.executable, "-m", "testbed.cli", "--root", str(tmp_path), "up", "s3"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        assert lines[1].strip().startswith("url: http://127.0.0.1:"), lines
    finally:
        proc.terminate()
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()
