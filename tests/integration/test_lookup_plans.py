"""The typical searches use an index on what they filter by, on SQLite without statistics.

recarchive never runs ANALYZE, so SQLite plans from the schema alone. At
migration 0002 an index starting with ``status`` (true of every active row)
made SQLite read the whole table for the number and the date + reason
searches (``docs/performance.md``: 0.9 to 1.5 s on 1,000,000 rows). These
tests capture the statement a real search sends and ask SQLite how it
would run it: a new index or a changed query that brings back a full read
fails here, not in production.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from recarchive.access.policy import Role
from recarchive.access.services import Principal
from recarchive.lookup.filters import SearchFilters
from recarchive.lookup.services import search
from recarchive.runtime import Runtime
from tests.api_fixtures import add_recording, build_runtime, close_runtime

NUMBER = "+358401234567"
NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    root: Path = tmp_path_factory.mktemp("plans")
    runtime = build_runtime(f"sqlite:///{root / 'catalogue.db'}", root / "data")
    for day in range(3):
        add_recording(
            runtime,
            started_at=NOW - dt.timedelta(days=day),
            customer_id=f"C-{day}",
            caller_number=NUMBER,
            reasons=["billing"],
        )
    yield runtime
    close_runtime(runtime)


def recordings_plan(runtime: Runtime, filters: SearchFilters, role: Role) -> list[str]:
    """SQLite's plan for the recordings query of one real search (not its page details)."""
    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM recordings" in statement and "ORDER BY recordings.started_at" in statement:
            sent.append((statement, parameters))

    principal = Principal(uuid.uuid4(), "plan-test", role, uuid.uuid4())
    event.listen(runtime.engine, "before_cursor_execute", capture)
    try:
        search(runtime, principal, filters, now=NOW)
    finally:
        event.remove(runtime.engine, "before_cursor_execute", capture)
    assert len(sent) == 1, sent
    statement, parameters = sent[0]
    with runtime.engine.connect() as connection:
        rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
    return [str(row[-1]) for row in rows]


def table_access(plan: list[str]) -> list[str]:
    """The plan's lines that read the recordings table itself."""
    return [line for line in plan if " recordings " in f" {line} " and "recording_" not in line]


CASES = {
    "customer": (SearchFilters(customer_id="C-1"), Role.DISPUTE_HANDLER, ("customer_id=?",)),
    "number": (
        SearchFilters(number=NUMBER),
        Role.DISPUTE_HANDLER,
        ("caller_number=?", "called_number=?"),
    ),
    "date and reason": (
        SearchFilters(
            started_from=NOW - dt.timedelta(days=7), started_to=NOW, reasons=("billing",)
        ),
        Role.QA_TRAINER,
        ("started_at>?", "started_at<?"),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_typical_searches_look_up_an_index_on_their_filter(runtime: Runtime, case: str) -> None:
    filters, role, conditions = CASES[case]
    plan = recordings_plan(runtime, filters, role)
    access = table_access(plan)
    assert access, plan
    for line in access:
        assert line.startswith("SEARCH"), f"{case}: reads the whole table: {plan}"
        assert "status" not in line.split("(")[0], f"{case}: walks a status index: {plan}"
    for condition in conditions:
        assert any(condition in line for line in access), f"{case}: no index on it: {plan}"


def test_the_check_catches_the_index_that_once_made_searches_read_everything(
    tmp_path: Path,
) -> None:
    """With 0002's ``(status, retain_until)`` index back, the number search walks it."""
    runtime = build_runtime(f"sqlite:///{tmp_path / 'catalogue.db'}", tmp_path / "data")
    try:
        add_recording(runtime, started_at=NOW, caller_number=NUMBER, reasons=["billing"])
        with runtime.engine.begin() as connection:
            connection.exec_driver_sql(
                "CREATE INDEX ix_recordings_status_retain_until"
                " ON recordings (status, retain_until)"
            )
        filters, role, _ = CASES["number"]
        access = table_access(recordings_plan(runtime, filters, role))
        assert any("ix_recordings_status_retain_until" in line for line in access), access
    finally:
        close_runtime(runtime)
