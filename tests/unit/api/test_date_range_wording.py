"""The API, the CLI and the web player say the same about a search's ``from`` and ``to``.

``to`` is exclusive in the API; the player's date field and ``lookup --to``
must not promise otherwise (the player used to label it "Until (inclusive)").
"""

from __future__ import annotations

from pathlib import Path

import click

from recarchive.api.app import create_app
from recarchive.cli.lookup_cmd import lookup_command
from recarchive.config import load_settings
from recarchive.lookup.filters import STARTED_FROM_MEANING, STARTED_TO_MEANING
from recarchive.runtime import Runtime

API_DIR = Path(__file__).resolve().parents[3] / "recarchive" / "api"


def _option_help(name: str) -> str | None:
    [option] = [p for p in lookup_command.params if isinstance(p, click.Option) and name in p.opts]
    return option.help


def test_the_api_and_the_cli_say_to_is_exclusive() -> None:
    assert "(exclusive)" in STARTED_TO_MEANING
    assert "(inclusive)" in STARTED_FROM_MEANING
    runtime = Runtime(load_settings(env={}))  # never opens its catalogue
    try:
        document = create_app(runtime).openapi()
    finally:
        runtime.close()
    parameters = {
        p["name"]: p.get("description")
        for p in document["paths"]["/api/v1/recordings"]["get"]["parameters"]
    }
    assert parameters["to"] == STARTED_TO_MEANING
    assert parameters["from"] == STARTED_FROM_MEANING
    assert _option_help("--to") == STARTED_TO_MEANING
    assert _option_help("--from") == STARTED_FROM_MEANING


def test_the_player_labels_and_sends_to_as_exclusive() -> None:
    page = (API_DIR / "templates" / "player.html").read_text(encoding="utf-8")
    assert '<label for="to">Before (exclusive)</label>' in page
    assert '<label for="from">From (inclusive)</label>' in page
    assert "Until" not in page
    script = (API_DIR / "static" / "player.js").read_text(encoding="utf-8")
    assert "nextDay" not in script  # the date typed is the date sent: no day added
