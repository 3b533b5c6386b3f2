"""What the benchmark scripts share: a boto3 client for the test S3 server, and cleanup.

Not a command: ``scripts/bench_ingest.py``, ``scripts/bench_expire.py`` and
``scripts/bench_encryption.py`` import it. The connection comes from the
variables ``scripts/s3-server start`` prints.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

if TYPE_CHECKING:  # boto3-stubs (a test dependency): the types only
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

#: The variables ``scripts/s3-server start`` prints, which every S3 benchmark needs.
NEEDED = ("RECARCHIVE_S3_ENDPOINT_URL", "RECARCHIVE_S3_ACCESS_KEY_ID",
          "RECARCHIVE_S3_SECRET_ACCESS_KEY")  # fmt: skip

#: Buckets the running benchmark created; :func:`remove_buckets` empties and removes them
#: (the test server's disk is small).
CREATED: list[str] = []


def require_environment(script: str) -> dict[str, str]:
    """The S3 variables, or one line on stderr naming what is missing and exit status 2."""
    missing = [name for name in NEEDED if not os.environ.get(name)]
    if missing:
        print(
            f'{script}: set {", ".join(missing)} first: eval "$(scripts/s3-server start)"',
            file=sys.stderr,
        )
        sys.exit(2)
    return {
        name: os.environ[name] for name in (*NEEDED, "RECARCHIVE_S3_REGION") if name in os.environ
    }


def forwarded_environment() -> dict[str, str]:
    """The environment for a ``recarchive`` child process: this one's, without any
    ``RECARCHIVE_*`` variable but the S3 server's (those set; the filesystem store needs none)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RECARCHIVE_")}
    for name in (*NEEDED, "RECARCHIVE_S3_REGION"):
        if os.environ.get(name):
            environment[name] = os.environ[name]
    return environment


def describe_checkout() -> str:
    """The commit measured, and whether the package differs from it."""
    repo = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    try:
        commit = git("log", "-1", "--format=%h %cI")
        changed = git("status", "--porcelain", "recarchive")
    except (OSError, subprocess.CalledProcessError):
        return "an unknown commit (no git)"
    return commit + (" with uncommitted changes in recarchive/" if changed else "")


def client() -> S3Client:
    """A plain boto3 client for the test S3 server, as boto3 users configure one."""
    return boto3.client(
        "s3",
        endpoint_url=os.environ["RECARCHIVE_S3_ENDPOINT_URL"],
        aws_access_key_id=os.environ["RECARCHIVE_S3_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["RECARCHIVE_S3_SECRET_ACCESS_KEY"],
        region_name=os.environ.get("RECARCHIVE_S3_REGION", "us-east-1"),
        config=Config(
            s3={"addressing_style": "path"},
            retries={"mode": "standard", "max_attempts": 5},
            max_pool_connections=32,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def remove_buckets() -> None:
    """Empty and delete every bucket in :data:`CREATED` (those that were made)."""
    if not CREATED:
        return
    s3 = client()
    for bucket in CREATED:
        try:
            s3.head_bucket(Bucket=bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket"):
                continue
            raise
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys: list[ObjectIdentifierTypeDef] = [
                {"Key": item["Key"]} for item in page.get("Contents", [])
            ]
            if keys:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        s3.delete_bucket(Bucket=bucket)
