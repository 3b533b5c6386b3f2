"""docs/architecture.md draws the import contracts of pyproject.toml: the two agree."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def contracts() -> list[dict[str, Any]]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    found: list[dict[str, Any]] = config["tool"]["importlinter"]["contracts"]
    return found


def layers_picture() -> str:
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    match = re.search(r"## Layers\n\n```\n(.*?)\n```", text, re.DOTALL)
    assert match, "docs/architecture.md has no picture under '## Layers'"
    return match.group(1)


def test_the_picture_has_the_contract_layers_in_order() -> None:
    [layers] = [c for c in contracts() if c["type"] == "layers"]
    picture = layers_picture()
    positions = []
    for layer in layers["layers"]:
        row = " · ".join(name.strip() for name in layer.split(":"))
        found = re.search(rf"(?m)(^\s*|──▶ ){re.escape(row)}(\s|$)", picture)
        assert found, f"the layer {row!r} is not drawn in docs/architecture.md"
        positions.append(found.start())
    assert positions == sorted(positions), "the layers are drawn in another order"


def test_cycles_are_forbidden_everywhere() -> None:
    [acyclic] = [c for c in contracts() if c["type"] == "acyclic_siblings"]
    assert acyclic["ancestors"] == ["recarchive"]
    assert "depth" not in acyclic  # the default: every package, every depth
