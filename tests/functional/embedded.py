"""An embedded installation (SQLite + filesystem store) driven in-process, as its operator would.

``generate`` writes a day of synthetic spool calls with ``scripts/gen_calls.py``
(tones instead of speech: fast); ``configure`` points the demo configuration at
it; ``invoke`` runs ``recarchive ARGS`` with click's CliRunner and only the
given environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from recarchive.cli import cli
from tests.functional.helpers import backdate

REPO = Path(__file__).resolve().parents[2]


def invoke(env: Mapping[str, str], *args: str, stdin: str | None = None) -> Result:
    """Run ``recarchive ARGS`` in-process with only ``env``'s RECARCHIVE_*/AWS_* variables."""
    foreign: dict[str, str | None] = {
        name: None for name in os.environ if name.startswith(("RECARCHIVE_", "AWS_"))
    }
    return CliRunner().invoke(
        cli, list(args), env={**foreign, **env}, input=stdin, catch_exceptions=False
    )


def configure(tmp_path: Path, spool: Path, data_dir: Path | None = None) -> dict[str, str]:
    """The demo configuration (spool source, ``after_archive = "move"``) under ``tmp_path``."""
    template = (REPO / "docs" / "examples" / "demo.toml.in").read_text(encoding="utf-8")
    data_dir = data_dir or tmp_path / "install" / "var"
    text = template.replace("@DATA_DIR@", str(data_dir)).replace("@SPOOL@", str(spool))
    config = tmp_path / "recarchive.toml"
    config.write_text(text, encoding="utf-8")
    return {"RECARCHIVE_CONFIG": str(config), "RECARCHIVE_REASONS_DEFAULT_CODE": ""}


def generate(out: Path, count: int, *, customers: int = 5, seed: int = 5) -> dict[str, Any]:
    """``count`` calls of 2-3 s in a spool layout; returns the generator's manifest."""
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_calls.py"), "--out", str(out),
         "--layout", "spool", "--count", str(count), "--day", "2026-03-14", "--engine", "tones",
         "--min-seconds", "2", "--max-seconds", "3", "--seed", str(seed),
         "--customers", str(customers), "--jobs", "1"],
        check=True, capture_output=True,
    )  # fmt: skip
    backdate(out)
    manifest: dict[str, Any] = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    return manifest
