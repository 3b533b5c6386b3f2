"""docs/privacy.md lists every column of the catalogue, so no migration adds one unexplained."""

from __future__ import annotations

import re
from pathlib import Path

from recarchive.catalogue.schema import metadata

DOC = Path(__file__).resolve().parents[2] / "docs" / "privacy.md"
SECTION = "## What the archive keeps, and until when"


def inventory() -> dict[str, set[str]]:
    """Table name -> the columns its inventory rows name (first cell, in backticks)."""
    text = DOC.read_text(encoding="utf-8")
    assert SECTION in text, f"{DOC} lost its section {SECTION!r}"
    listed: dict[str, set[str]] = {}
    tables: list[str] = []
    for line in text.split(SECTION, 1)[1].splitlines():
        if line.startswith("#### "):
            tables = re.findall(r"`([a-z_]+)`", line)
            for table in tables:
                listed.setdefault(table, set())
        elif line.startswith("| `") and tables:
            first_cell = line.split("|")[1]
            for column in re.findall(r"`([a-z_0-9]+)`", first_cell):
                for table in tables:
                    listed[table].add(column)
    return listed


def undocumented(schema: dict[str, list[str]], listed: dict[str, set[str]]) -> set[str]:
    return {
        f"{table}.{column}"
        for table, columns in schema.items()
        for column in columns
        if column not in listed.get(table, set())
    }


def test_every_table_and_column_of_the_catalogue_is_in_the_inventory() -> None:
    schema = {t.name: [c.name for c in t.columns] for t in metadata.tables.values()}
    missing = undocumented(schema, inventory())
    assert not missing, f"docs/privacy.md does not say what these keep: {sorted(missing)}"


def test_the_inventory_names_no_table_the_catalogue_lacks() -> None:
    assert set(inventory()) <= set(metadata.tables), "a table in docs/privacy.md no longer exists"


def test_a_new_column_or_table_would_be_noticed() -> None:
    schema = {"recordings": ["caller_number", "caller_name"], "voicemails": ["id"]}
    assert undocumented(schema, inventory()) == {"recordings.caller_name", "voicemails.id"}
