"""Helpers for running the ``recarchive`` command in tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable


@dataclasses.dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


Runner = Callable[..., Result]


def error_lines(result: Result) -> list[str]:
    """Lines of stderr that are not JSON log events."""
    return [line for line in result.stderr.strip().splitlines() if not line.startswith("{")]


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
