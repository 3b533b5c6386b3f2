"""Run the ``recarchive`` command the way a user does: a process, its output, its status."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.functional.helpers import Result, Runner
from tests.logscan import SESSION


@pytest.fixture
def run_cli(tmp_path: Path) -> Runner:
    """Run ``recarchive ARGS`` in ``tmp_path`` with only the given RECARCHIVE_* variables."""

    def run(*args: str, env: Mapping[str, str] | None = None, timeout: float = 120) -> Result:
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("RECARCHIVE_", "AWS_"))}
        clean.update(env or {})
        completed = subprocess.run(
            [sys.executable, "-m", "recarchive", *args],
            cwd=tmp_path,
            env=clean,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        SESSION.scan_output(f"recarchive {' '.join(args[:2])}", completed.stderr)
        return Result(completed.returncode, completed.stdout, completed.stderr)

    return run
