"""Helpers for running the ``recarchive`` command and the benchmark scripts in tests."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

REPO = Path(__file__).resolve().parent.parent.parent


@dataclasses.dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


class Runner(Protocol):
    """Runs ``recarchive ARGS`` (see ``tests/functional/conftest.py``)."""

    def __call__(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        stdin: str | None = None,
        timeout: float = 120,
    ) -> Result: ...

    @property
    def process(self) -> Runner:
        """The same runner, starting ``python -m recarchive`` as a child process."""
        ...


def backdate(tree: Path, seconds: float = 600) -> None:
    """Every file under ``tree`` last written ``seconds`` ago: what a PBX wrote a while
    ago, past the spool's settle time and its wait for a CDR row (``cdr_wait_s``)
    however soon the next command runs."""
    when = time.time() - seconds
    for path in tree.rglob("*"):
        os.utime(path, (when, when))


def error_lines(result: Result) -> list[str]:
    """Lines of stderr that are not JSON log events (nor the blank line before a summary)."""
    return [line for line in result.stderr.splitlines() if line and not line.startswith("{")]


def assert_one_line_error(result: Result, *fragments: str) -> None:
    """Exit status 1, one line on stderr starting with 'Error:', no traceback.

    JSON log lines written before the error (the CLI logs JSON when stderr
    is not a terminal) are not part of the message.
    """
    assert result.returncode == 1, result
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def run_bench(
    script: str,
    arguments: list[str],
    cwd: Path,
    *,
    extra_env: Mapping[str, str] | None = None,
    timeout: float,
) -> list[str]:
    """Run ``scripts/<script>`` without any ``RECARCHIVE_*``/``AWS_*`` variables of
    this environment (plus ``extra_env``); assert it succeeds, return its stdout lines."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("RECARCHIVE_", "AWS_"))}
    environment.update(extra_env or {})
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / script), *arguments],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()
