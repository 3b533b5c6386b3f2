"""pyproject.toml installs without warnings and declares only what recarchive uses."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_license_is_an_spdx_expression_for_a_setuptools_that_takes_one() -> None:
    # The table form ({ text = ... }) makes setuptools >= 77 warn at every install.
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    [setuptools] = PYPROJECT["build-system"]["requires"]
    match = re.fullmatch(r"setuptools>=(\d+)", setuptools)
    assert match
    assert int(match.group(1)) >= 77


def test_no_dependency_that_nothing_imports() -> None:
    names = {re.split(r"[<>=\[;]", d, maxsplit=1)[0] for d in PYPROJECT["project"]["dependencies"]}
    assert "mutagen" not in names
    sources = [*(REPO / "recarchive").rglob("*.py"), *(REPO / "scripts").glob("*.py")]
    importing = re.compile(r"^\s*(import|from) mutagen\b", re.MULTILINE)
    assert not [p for p in sources if importing.search(p.read_text(encoding="utf-8"))]
