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


def clean_environment(env: Mapping[str, str] | None) -> dict[str, str]:
    """This process's environment without RECARCHIVE_*/AWS_* variables, plus ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("RECARCHIVE_", "AWS_"))}
    clean.update(env or {})
    return clean


def runner(cwd: Path) -> Runner:
    """Run ``recarchive ARGS`` in ``cwd`` with only the given RECARCHIVE_* variables."""

    def run(*args: str, env: Mapping[str, str] | None = None, timeout: float = 120) -> Result:
        completed = subprocess.run(
            [sys.executable, "-m", "recarchive", *args],
            cwd=cwd,
            env=clean_environment(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        SESSION.scan_output(f"recarchive {' '.join(args[:2])}", completed.stderr)
        return Result(completed.returncode, completed.stdout, completed.stderr)

    return run


@pytest.fixture
def run_cli(tmp_path: Path) -> Runner:
    """Run ``recarchive ARGS`` in ``tmp_path`` with only the given RECARCHIVE_* variables."""
    return runner(tmp_path)


@pytest.fixture(scope="module")
def run_module_cli(tmp_path_factory: pytest.TempPathFactory) -> Runner:
    """:func:`run_cli` for module-scoped fixtures: one working directory per module."""
    return runner(tmp_path_factory.mktemp("cwd"))
