"""Nothing of an erased or expired call is left anywhere in the installation but its tombstone.

An embedded installation (the demo configuration: SQLite, filesystem store, a
spool source that moves archived originals to a done directory) ingests a
day of calls. After a customer's erasure, and again after everything has
expired (the clock moved ahead), every table of the catalogue and every byte
of every file under the data directory and the done directory is searched
for the numbers of the callers concerned, in every spelling a person or a
system writes them, and for their audio.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select, text

from recarchive.catalogue.database import create_catalogue_engine
from tests.functional.embedded import configure, generate, invoke

pytestmark = pytest.mark.slow


def spellings(e164: str) -> set[str]:
    """The ways a Finnish number is written: E.164, without +, 00-prefixed, national, grouped."""
    assert e164.startswith("+358"), e164
    national = "0" + e164.removeprefix("+358")
    return {
        e164,
        e164[1:],
        "00" + e164[1:],
        national,
        f"{national[:3]} {national[3:]}",
        f"{national[:3]}-{national[3:]}",
        f"{national[:3]} {national[3:6]} {national[6:]}",
    }


def catalogue_rows(database: Path) -> Iterator[tuple[str, str]]:
    """(table, the row as text) for every row of every table."""
    engine = create_catalogue_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as connection:
            for table in inspect(connection).get_table_names():
                for row in connection.execute(text(f'SELECT * FROM "{table}"')):  # noqa: S608
                    yield table, json.dumps([str(value) for value in row], ensure_ascii=False)
    finally:
        engine.dispose()


def traces(roots: Iterable[Path], database: Path, numbers: Iterable[str]) -> list[str]:
    """Where any spelling of ``numbers`` still appears: catalogue rows, file names, file bytes."""
    needles = sorted({spelling for number in numbers for spelling in spellings(number)})
    found = [
        f"table {table}: {needle}"
        for table, row in catalogue_rows(database)
        for needle in needles
        if needle in row
    ]
    for root in roots:
        for path in [root, *root.rglob("*")]:
            found += [f"name {path}" for needle in needles if needle in path.name]
            if path.is_file():
                data = path.read_bytes()
                found += [f"file {path}: {needle}" for needle in needles if needle.encode() in data]
    return found


def audio_files(objects: Path) -> list[Path]:
    """Recordings in the store and temporary copies of audio anywhere in it."""
    return [
        path
        for path in objects.rglob("*")
        if path.is_file() and path.suffix != ".json" and path.name != "lock"
    ]


def officer_env(env: dict[str, str]) -> dict[str, str]:
    admin = invoke(env, "users", "add", "setup", "--role", "admin")  # the first admin: root's
    assert admin.exit_code == 0, admin.output
    added = invoke({**env, "RECARCHIVE_USER_TOKEN": admin.stdout.strip().splitlines()[-1]},
                   "users", "add", "officer", "--role", "privacy_officer")  # fmt: skip
    assert added.exit_code == 0, added.output
    token = added.stdout.strip().splitlines()[-1]
    return {**env, "RECARCHIVE_USER_TOKEN": token}


def archived_calls(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    calls = [call for call in manifest["calls"] if call["expected"] == "archived"]
    assert calls, "the generated day has no call to archive"
    return calls


def test_erasure_and_expiry_leave_no_number_and_no_audio(tmp_path: Path) -> None:
    spool = tmp_path / "pbx"
    manifest = generate(spool, 10, customers=6, seed=11)
    data = tmp_path / "install" / "var"
    env = configure(tmp_path, spool, data)
    database, done = data / "recarchive.db", spool / "done"
    roots = [data, done]
    assert invoke(env, "init").exit_code == 0
    imported = invoke(env, "directory", "import", str(spool / "customers.csv"))
    assert imported.exit_code == 0, imported.output
    ingest = invoke(env, "ingest", "--once", "--json")
    assert ingest.exit_code == 0, ingest.output
    calls = archived_calls(manifest)
    assert json.loads(ingest.stdout)["archived"] == len(calls)

    # The erased customer: the one with most calls, numbers they share left aside
    # (those calls are not theirs alone; they need the officer's decision).
    by_customer: dict[str, set[str]] = {}
    ambiguous: set[str] = set()
    for call in calls:
        owner, number = call["expected_customer_id"], call["customer_number"]
        if owner == "ambiguous":
            ambiguous.add(number)
        elif owner and owner.startswith("C") and number:
            by_customer.setdefault(owner, set()).add(number)
    customer = max(by_customer, key=lambda c: len(by_customer[c]))
    shared = ambiguous | {
        number for other, numbers in by_customer.items() if other != customer for number in numbers
    }
    theirs = by_customer[customer] - shared
    assert theirs
    assert traces(roots, database, theirs), "the scan finds nothing even before erasure"

    officer = officer_env(env)
    erased = invoke(officer, "subject", "erase", "--customer", customer, "--yes")
    assert erased.exit_code == 0, erased.output
    assert "completed" in erased.stdout
    assert traces(roots, database, theirs) == []

    # Everything else expires: the clock a year and a month ahead.
    later = dt.datetime(2026, 3, 14, tzinfo=dt.UTC) + dt.timedelta(days=400)
    expired = invoke(env, "expire", "--now", later.isoformat(), "--force")
    assert expired.exit_code == 0, expired.output
    assert invoke(env, "ingest", "--once").exit_code == 0  # the next pass sweeps its copies
    everyone = {call["customer_number"] for call in calls if call["customer_number"]}
    assert traces(roots, database, everyone) == []
    assert audio_files(data / "objects") == []
    assert [p for p in (data / "work").rglob("*") if p.is_file()] == []
    engine = create_catalogue_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as connection:
            stones = connection.execute(select(text("count(*)")).select_from(text("tombstones")))
            assert stones.scalar() == len(calls)
    finally:
        engine.dispose()
    assert os.listdir(data / "objects" / ".recarchive" / "tmp") == []
