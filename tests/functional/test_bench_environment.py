"""The S3 benchmarks without the S3 server's variables: one line and exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.functional.helpers import REPO


@pytest.mark.parametrize(
    ("script", "arguments"),
    [
        ("bench_ingest.py", ["--count", "1"]),
        ("bench_expire.py", ["--count", "1"]),
        ("bench_encryption.py", ["--store", "s3", "--count", "1"]),
    ],
)
def test_a_missing_s3_endpoint_is_one_line_and_exit_status_2(
    script: str, arguments: list[str], tmp_path: Path
) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("RECARCHIVE_", "AWS_"))}
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / script), *arguments],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith(f"{script}: set RECARCHIVE_S3_ENDPOINT_URL, ")
    assert line.endswith('first: eval "$(scripts/s3-server start)"')
