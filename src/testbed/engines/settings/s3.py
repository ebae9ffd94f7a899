"""S3Settings: [tool.testbed.s3]'s keys (built only when that engine's table is validated)."""

from __future__ import annotations

from dataclasses import dataclass

from testbed.config import ServiceSettings, setting


@dataclass(frozen=True)
class S3Settings(ServiceSettings):
    """[tool.testbed.s3]: the common keys, the region, and credentials and a bucket prefix for an existing S3."""

    region: str = setting("us-east-1", kind="str", doc="the region clients are given")
    access_key: str | None = setting(None, kind="str", doc="runner = 'existing': the access key id")
    secret_key: str | None = setting(None, kind="str", doc="runner = 'existing': the secret access key")
    bucket_prefix: str = setting("testbed-", kind="str", doc="runner = 'existing': buckets testbed may delete")
