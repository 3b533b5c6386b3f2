"""Modules stay readable in one sitting: at most 500 lines, functions at most 80.

Alembic's revisions under ``catalogue/migrations/versions`` are left out: a
revision is a frozen record of a schema, read as a whole and never edited.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "recarchive"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
EXEMPT = PACKAGE / "catalogue" / "migrations" / "versions"


def sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if not p.is_relative_to(EXEMPT))


def long_functions(source: str, name: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{name}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_no_module_is_longer_than_500_lines() -> None:
    long = [
        f"{p.relative_to(PACKAGE.parent)} ({n} lines)"
        for p in sources()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    ]
    assert not long, f"split these by responsibility: {long}"


def test_no_function_is_longer_than_80_lines() -> None:
    long = [
        finding
        for p in sources()
        for finding in long_functions(p.read_text(encoding="utf-8"), str(p.relative_to(PACKAGE)))
    ]
    assert not long, f"split these: {long}"


def test_a_long_function_is_found() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    assert long_functions(f"def f():\n{body}\n", "m.py") == ["m.py:1 f (81 lines)"]
    assert long_functions("def g():\n    return 1\n", "m.py") == []
