"""The test S3 server (``scripts/s3-server``), as the environment describes it."""

from __future__ import annotations

import os

import pytest


def s3_environment() -> dict[str, str]:
    """``RECARCHIVE_*`` settings that point recarchive at the test S3 server.

    Skips the test when ``RECARCHIVE_S3_ENDPOINT_URL`` is not set, or fails it
    when ``RECARCHIVE_TEST_REQUIRE_S3=1`` (``scripts/test`` sets both), so that
    CI cannot pass by skipping the real server.
    """
    endpoint = os.environ.get("RECARCHIVE_S3_ENDPOINT_URL")
    if not endpoint:
        message = (
            "S3 server not configured: set RECARCHIVE_S3_ENDPOINT_URL "
            '(run eval "$(scripts/s3-server start)")'
        )
        if os.environ.get("RECARCHIVE_TEST_REQUIRE_S3") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return {
        "RECARCHIVE_STORAGE_BACKEND": "s3",
        "RECARCHIVE_S3_ENDPOINT_URL": endpoint,
        "RECARCHIVE_S3_REGION": os.environ.get("RECARCHIVE_S3_REGION") or "us-east-1",
        "RECARCHIVE_S3_ACCESS_KEY_ID": os.environ.get("RECARCHIVE_S3_ACCESS_KEY_ID", ""),
        "RECARCHIVE_S3_SECRET_ACCESS_KEY": os.environ.get("RECARCHIVE_S3_SECRET_ACCESS_KEY", ""),
    }
