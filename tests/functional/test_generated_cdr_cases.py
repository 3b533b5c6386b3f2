"""Generated spools with the CDR cases real PBXs produce, through the CLI.

``gen_calls.py --bad late_cdr_row`` writes one call's Master.csv lines to
``late/Master.csv`` instead: the first ``ingest --once`` archives its
recording from the file name (the wait is over: the spool is backdated), and
once the lines are appended, the next pass enriches it with what they tell.
``--transfers N`` gives calls a second part, its own recording, whose CDR
lines carry the first part's uniqueid as ``linkedid``: the two recordings
are linked as one call.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select

from recarchive.access.models import AuditEvent
from recarchive.catalogue.database import create_catalogue_engine, session_factory
from recarchive.catalogue.models import Recording
from recarchive.ingest.enrichment import ACTION
from tests.functional.embedded import REPO, configure, invoke
from tests.functional.helpers import backdate


def recording_of(data: Path, source_ref: str) -> tuple[Recording, list[AuditEvent]]:
    engine = create_catalogue_engine(f"sqlite:///{data / 'recarchive.db'}")
    try:
        with session_factory(engine)() as session:
            row = session.scalars(select(Recording).where(Recording.source_ref == source_ref)).one()
            events = list(session.scalars(select(AuditEvent).where(AuditEvent.action == ACTION)))
            session.expunge_all()
            return row, events
    finally:
        engine.dispose()


def generate(spool: Path, *options: str) -> dict[str, Any]:
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_calls.py"), "--out", str(spool),
         "--layout", "spool", "--count", "4", "--day", "2026-03-14", "--engine", "tones",
         "--min-seconds", "2", "--max-seconds", "3", "--customers", "5", "--jobs", "1",
         *options],
        check=True, capture_output=True,
    )  # fmt: skip
    backdate(spool)
    manifest: dict[str, Any] = json.loads((spool / "manifest.json").read_text(encoding="utf-8"))
    return manifest


def test_late_generated_cdr_lines_enrich_the_recording_archived_from_its_name(
    tmp_path: Path,
) -> None:
    spool = tmp_path / "pbx"
    manifest = generate(spool, "--bad", "late_cdr_row", "--legs")
    [late] = [call for call in manifest["calls"] if call.get("bad_case") == "late_cdr_row"]
    assert late["late_record"] == "late/Master.csv"
    uniqueid = late["source_ref"].rsplit("-", 1)[1].removesuffix(".wav")
    assert uniqueid not in (spool / "cdr" / "Master.csv").read_text(encoding="utf-8")
    env = configure(tmp_path, spool)
    data = tmp_path / "install" / "var"
    assert invoke(env, "init").exit_code == 0

    first = invoke(env, "ingest", "--once", "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["archived_without_record"] == 1
    before, _ = recording_of(data, late["source_ref"])
    assert before.facts_from_name
    assert before.agent is None  # a queue's name tells no agent

    with (spool / "cdr" / "Master.csv").open("a", encoding="utf-8") as master:
        master.write((spool / late["late_record"]).read_text(encoding="utf-8"))
    second = invoke(env, "ingest", "--once", "--json")
    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout)["enriched"] == 1

    after, events = recording_of(data, late["source_ref"])
    assert not after.facts_from_name
    assert after.agent == late["expected_agent"]  # the device that talked, from its legs
    assert [event.recording_id for event in events] == [after.id]
    again = invoke(env, "ingest", "--once", "--json")
    assert json.loads(again.stdout)["enriched"] == 0


def test_the_parts_of_generated_transfers_are_linked_as_one_call(tmp_path: Path) -> None:
    spool = tmp_path / "pbx"
    manifest = generate(spool, "--transfers", "2")
    parts = [call for call in manifest["calls"] if "expected_linked_call_id" in call]
    assert len(parts) == 4  # two calls, each in two parts
    env = configure(tmp_path, spool)
    assert invoke(env, "init").exit_code == 0
    ingest = invoke(env, "ingest", "--once", "--json")
    assert ingest.exit_code == 0, ingest.output

    data = tmp_path / "install" / "var"
    linked = {part["source_ref"]: recording_of(data, part["source_ref"])[0] for part in parts}
    for part in parts:
        assert linked[part["source_ref"]].linked_call_id == part["expected_linked_call_id"]
    assert len({row.linked_call_id for row in linked.values()}) == 2
