"""Ingest of a spool whose Master.csv is written the way Asterisk writes real calls.

``scripts/gen_calls.py --legs``: one 21-column line per dial leg, ring-group forks,
queue members reached through Local channels (the ``;2`` halves with uniqueids of
their own), and two calls in the hour repeated when daylight saving time ends.
Each recording must carry the agent that talked and its true start, and only the
call planted without a recording may be reported as missing one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from recarchive.catalogue.database import create_catalogue_engine
from recarchive.catalogue.intake import QuarantineEntry
from recarchive.catalogue.migrate import upgrade_schema
from recarchive.ingest.tasks import run_ingest
from recarchive.runtime import Runtime
from tests.conftest import require_ffmpeg
from tests.integration.test_ingest_spool import make_settings, recordings
from tests.unit.test_gen_calls import gen

#: Calls of two days ago: past the wait for their recording, within the week it is reported.
DAY = (dt.datetime.now(ZoneInfo("Europe/Helsinki")) - dt.timedelta(days=2)).date()


@pytest.fixture
def legs_spool(tmp_path: Path) -> dict[str, Any]:
    require_ffmpeg()
    argv = [
        "--out", str(tmp_path), "--layout", "spool", "--count", "10", "--day", DAY.isoformat(),
        "--formats", "wav,ulaw", "--min-seconds", "3", "--max-seconds", "5", "--seed", "5",
        "--bad", "cdr_without_recording", "--customers", "20", "--engine", "tones",
        "--jobs", "1", "--legs",
    ]  # fmt: skip
    manifest: dict[str, Any] = gen.generate(gen.parse_args(argv))
    return manifest


@pytest.fixture
def runtime(
    tmp_path: Path, legs_spool: dict[str, Any], empty_catalogue_url: str
) -> Iterator[Runtime]:
    engine = create_catalogue_engine(empty_catalogue_url)
    upgrade_schema(engine)
    engine.dispose()
    store = '[storage]\nbackend = "filesystem"\n'
    runtime = Runtime(make_settings(tmp_path, empty_catalogue_url, store))
    runtime.store.create()
    yield runtime
    runtime.close()


def test_each_recording_has_the_agent_that_talked_and_its_true_start(
    runtime: Runtime, legs_spool: dict[str, Any], tmp_path: Path
) -> None:
    run_ingest(runtime.settings, once=True)

    archived = recordings(runtime)
    expected = [c for c in legs_spool["calls"] if c["recording_written"]]
    assert sorted(archived) == sorted(Path(c["recording"]).name for c in expected)
    for call in expected:
        recording = archived[Path(call["recording"]).name]
        assert recording.agent == call["expected_agent"], call["call_id"]
        started = dt.datetime.strptime(call["start"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        assert recording.started_at == started, call["call_id"]
    lines = (tmp_path / "cdr" / "Master.csv").read_text(encoding="utf-8").splitlines()
    halves = [line for line in lines if "@from-queue-" in line and ';2","PJSIP/' in line]
    assert any('"ANSWERED"' in line for line in halves)  # agents reached through Local channels
    assert any('"NO ANSWER"' in line for line in halves)
    folder = f"monitor/{gen.repeated_hour_day(DAY):%Y/%m/%d}/"
    repeated = [c for c in expected if c["recording"].startswith(folder)]
    assert len(repeated) == 2
    assert {c["start"][11:16] for c in repeated} == {"00:20", "01:20"}  # 03:20 local, twice

    with runtime.sessions() as session:
        reports = {
            entry.source_ref: entry.reason
            for entry in session.scalars(select(QuarantineEntry))
            if entry.reason == "cdr_without_recording"
        }
    [planted] = [c for c in legs_spool["calls"] if c["bad_case"] == "cdr_without_recording"]
    assert len(reports) == 1, reports  # no Local ;2 half, no unanswered leg
    [reported] = reports
    assert reported.startswith("call:")
    assert reported.removeprefix("call:") in lines[planted["cdr"]["master_csv_lines"][0] - 1]
