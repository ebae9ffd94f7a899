"""S3 through moto's server mode: a faithful S3 API as a local process (`moto_server`, from
``pip install 'pytest-testbed[s3]'``).

Each xdist worker gets an AWS account of its own on the shared server (moto routes a request to the
account whose IAM access key signed it), so ``list_buckets`` never shows another worker's buckets; the
per-test reset deletes every bucket, and its objects, in the worker's account. Bucket names are global, as
on AWS: tests running in parallel should not pick the same name (``testbed_s3_server.bucket_name(...)``).

With runner = "existing" (any S3 API: MinIO, LocalStack, ...), testbed uses the configured endpoint and
credentials and deletes after each test only the buckets that test created whose names start with
``bucket_prefix``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from testbed.config import ServiceSettings
from testbed.engines.base import Endpoint, Engine, Running
from testbed.engines.settings import S3Settings as S3Settings  # where it was defined before
from testbed.errors import ConfigError, GuardError, ServerStartError
from testbed.runners import binaries, discovery
from testbed.runners.binaries import Candidate
from testbed.runners.managed import ManagedServer
from testbed.runners.ports import LOOPBACK
from testbed.runners.users import readable_by


def _moto_version(path: str) -> str:
    # moto_server is a Python console script: ask the interpreter its shebang names.
    try:
        with open(path, "rb") as f:
            first = f.readline().decode("utf-8", "replace").strip()
    except OSError:
        return ""
    if not first.startswith("#!") or "python" not in first:
        return ""
    interpreter = first[2:].split()[0]
    try:
        out = subprocess.run([interpreter, "-c", "import importlib.metadata as m; print(m.version('moto'))"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return binaries.parse_version(out.stdout)


SPEC = discovery.BinarySpec(
    engine="s3",
    label="S3 (moto)",
    names=("moto_server",),
    system_globs=("/usr/local/bin/moto_server", "/usr/bin/moto_server"),
    pip_bundles=("moto",),
    version_of=_moto_version,
    install_hint="Install it: `pip install 'pytest-testbed[s3]'` (moto's server mode and boto3).",
)


def worker_account(worker_id: str | None) -> str:
    """The 12-digit AWS account of an xdist worker on the shared server (gw3 -> 100000000004)."""
    n = int(worker_id[2:]) + 1 if worker_id and worker_id[2:].isdigit() else 0
    return f"1{n:011d}"


@dataclass(frozen=True)
class S3Endpoint(Endpoint):
    """How to reach the S3 API: ``url`` is the endpoint URL; the credentials select the worker's account."""

    label: ClassVar[str] = "S3"
    boundary: ClassVar[str] = "s3"

    access_key: str = ""
    secret_key: str = ""
    region: str = "us-east-1"
    accounts: Mapping[str, tuple[str, str]] | None = None  # worker id ("" = no xdist) -> its key pair
    worker: str = ""
    bucket_prefix: str = ""  # existing server: only buckets with this prefix are ever deleted
    existing: bool = False

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment variables boto3 (>= 1.28), the AWS CLI and most SDKs read."""
        return {"AWS_ENDPOINT_URL": self.url, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_DEFAULT_REGION": self.region}

    def client(self, service: str = "s3", **kwargs: Any) -> Any:
        """A boto3 client on this endpoint with its credentials."""
        import boto3

        return boto3.client(service, endpoint_url=self.url, region_name=self.region,
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key, **kwargs)

    def bucket_name(self, base: str) -> str:
        """A bucket name of this worker's own (names are global across accounts, as on AWS)."""
        worker = self.worker or "main"
        return f"{self.bucket_prefix}{base}-{worker}".lower()

    def buckets(self) -> set[str]:
        """The buckets visible with this endpoint's credentials."""
        return {b["Name"] for b in self.client().list_buckets().get("Buckets", [])}

    def delete_buckets(self, names: set[str]) -> None:
        """Delete buckets with every object (and object version) in them."""
        s3 = self.client()
        for name in sorted(names):
            if self.existing and not name.startswith(self.bucket_prefix):
                raise GuardError(f"refusing to delete bucket {name!r}: it does not start with bucket_prefix "
                                 f"{self.bucket_prefix!r}.", boundary="s3")
            for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
                doomed = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                          for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
                if doomed:
                    s3.delete_objects(Bucket=name, Delete={"Objects": doomed, "Quiet": True})
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:
                    s3.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
            s3.delete_bucket(Bucket=name)


class S3Server(ManagedServer):
    """moto's S3 API server, owned by this process."""

    engine_name = "s3"
    run_prefix = "s3"
    log_name = "moto.log"

    def __init__(self, settings: ServiceSettings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.accounts: dict[str, tuple[str, str]] = {}

    def stage(self, binary: Candidate) -> Candidate:
        # A Python console script: what it runs is the interpreter and site-packages of its environment, which
        # no copy of one folder brings along. Drop privileges when that user can read them; else (a venv under
        # /root) run as this user: the server keeps data only in memory and listens on loopback only.
        candidate = super().stage(binary)
        interpreter = os.path.realpath(_interpreter(binary.path))
        if self.run_as is not None and not readable_by(interpreter, self.run_as):
            self.run_as = None
            return binary
        return candidate

    def command(self, building: bool) -> tuple[list[str], Mapping[str, str] | None]:
        assert self.binary is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
        return [self.binary.path, "-H", LOOPBACK, "-p", str(self.port)], env

    def ready(self) -> bool:
        import urllib.request

        with urllib.request.urlopen(f"http://{LOOPBACK}:{self.port}/moto-api/", timeout=2) as answer:
            return bool(answer.status == 200)

    def after_ready(self) -> None:
        # One AWS account per xdist worker: an IAM user and access key in that account; moto routes every
        # request signed with that key there.
        import boto3

        for worker in self.workers:
            account = worker_account(worker)
            iam = boto3.client("iam", endpoint_url=f"http://{LOOPBACK}:{self.port}", region_name="us-east-1",
                               aws_access_key_id="testbed", aws_secret_access_key="testbed")
            iam.meta.events.register("before-send.iam.*", _in_account(account))
            iam.create_user(UserName="testbed")
            key = iam.create_access_key(UserName="testbed")["AccessKey"]
            self.accounts[worker or ""] = (key["AccessKeyId"], key["SecretAccessKey"])

    def endpoint(self) -> S3Endpoint:
        key, secret = self.accounts.get("", next(iter(self.accounts.values()), ("", "")))
        return S3Endpoint(**self.base_endpoint_fields(), access_key=key, secret_key=secret,
                          region=str(getattr(self.settings, "region", "us-east-1")), accounts=dict(self.accounts))


def _interpreter(script: str) -> str:
    try:
        with open(script, "rb") as f:
            first = f.readline().decode("utf-8", "replace")
    except OSError:
        return script
    return first[2:].strip().split()[0] if first.startswith("#!") else script


def _in_account(account: str) -> Any:
    def add_header(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = account

    return add_header


class ExistingS3:
    """An S3 API testbed did not start (runner = "existing"): reached by URL, never stopped."""

    def __init__(self, settings: ServiceSettings) -> None:
        assert isinstance(settings, S3Settings)
        parts = urlsplit(settings.url or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"[tool.testbed.s3] url = {settings.url!r}: expected the endpoint, http://host:port.")
        if not settings.bucket_prefix:
            raise ConfigError("[tool.testbed.s3] bucket_prefix must not be empty with runner = 'existing': testbed "
                              "deletes only buckets whose names start with it.")
        self._endpoint = S3Endpoint(
            host=parts.hostname, port=parts.port or (443 if parts.scheme == "https" else 80), version="",
            binary="(existing server)", source=f"existing S3 at {parts.hostname}", pid=0, start_time=None,
            log_path="", access_key=settings.access_key or "", secret_key=settings.secret_key or "",
            region=settings.region, bucket_prefix=settings.bucket_prefix, existing=True,
        )

    def start(self) -> ExistingS3:
        try:
            self._endpoint.buckets()
        except Exception as exc:
            raise ServerStartError(
                f"cannot use the existing S3 at {self._endpoint.url}: {type(exc).__name__}: {exc}. Check "
                "[tool.testbed.s3] url, access_key and secret_key.", boundary="s3") from None
        return self

    def endpoint(self) -> S3Endpoint:
        return self._endpoint

    def stop(self) -> None:
        """Nothing to stop: the server is not ours."""

    def describe(self) -> Mapping[str, str]:
        e = self._endpoint
        return {"engine": "S3", "version": e.version, "binary": e.binary, "source": e.source, "url": e.url,
                "data": "the existing server's"}


class S3Engine(Engine):
    programs = ("moto_server",)
    name = "s3"
    label = "S3 (moto)"
    settings_class = S3Settings
    endpoint_class = S3Endpoint
    url_fixture = "s3_url"
    client_fixture = "s3"

    def discover(self, settings: ServiceSettings) -> list[Candidate]:
        return discovery.discover(SPEC, settings)

    def choose_binary(self, settings: ServiceSettings) -> Candidate:
        return discovery.choose(SPEC, settings)

    def start_local(self, settings: ServiceSettings, root: Path, workers: tuple[str | None, ...]) -> Running:
        return S3Server(settings, workers=workers).start()

    def attach(self, settings: ServiceSettings, root: Path, workers: tuple[str | None, ...]) -> Running:
        return ExistingS3(settings).start()

    def endpoint_from_dict(self, data: Mapping[str, Any]) -> Endpoint:
        accounts = {k: (v[0], v[1]) for k, v in (data.get("accounts") or {}).items()}
        return S3Endpoint.from_dict({**data, "accounts": accounts})

    def for_worker(self, endpoint: Endpoint, worker_id: str | None) -> Endpoint:
        assert isinstance(endpoint, S3Endpoint)
        if endpoint.existing or not endpoint.accounts:
            return replace(endpoint, worker=worker_id or "")
        keys = endpoint.accounts.get(worker_id or "")
        if keys is None:
            raise ServerStartError(f"the S3 server has no account for xdist worker {worker_id}.", boundary="s3")
        return replace(endpoint, access_key=keys[0], secret_key=keys[1], worker=worker_id or "")

    @contextlib.contextmanager
    def test_scope(self, endpoint: Endpoint, nodeid: str) -> Iterator[str]:
        assert isinstance(endpoint, S3Endpoint)
        endpoint.check_alive(f"setting up {nodeid}")
        before = endpoint.buckets()
        if not endpoint.existing:
            endpoint.delete_buckets(before)  # the worker's account is testbed's alone
            before = set()
        yield endpoint.url
        if endpoint.alive():
            created = endpoint.buckets() - before
            if endpoint.existing:
                created = {b for b in created if b.startswith(endpoint.bucket_prefix)}
            endpoint.delete_buckets(created)

    @contextlib.contextmanager
    def client(self, endpoint: Endpoint, url: str) -> Iterator[Any]:
        assert isinstance(endpoint, S3Endpoint)
        client = endpoint.client()
        try:
            yield client
        finally:
            client.close()


ENGINE = S3Engine()
