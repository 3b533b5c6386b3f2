"""The recordings of one transferred call share its ``linkedid`` in the catalogue.

A hand-built spool: a call answered by 2101 and blind-transferred to 2102, two
recordings with uniqueids of their own, one linkedid (the first part's uniqueid),
as Asterisk writes them in a 21-column Master.csv (``newcdrcolumns``); and a call
that was not transferred, logged by the 18-column layout without a linkedid.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from recarchive.catalogue.database import create_catalogue_engine
from recarchive.catalogue.migrate import upgrade_schema
from recarchive.ingest.sources.s3drop_records import record_facts
from recarchive.ingest.tasks import run_ingest
from recarchive.runtime import Runtime
from tests.conftest import require_ffmpeg
from tests.integration.test_ingest_spool import (
    DAY,
    cdr_line,
    ffmpeg,
    make_settings,
    put,
    recordings,
)

FIRST = "in-0201234000-0401234567-20260314-112653-1742211234.117.wav"
SECOND = "in-0201234000-0401234567-20260314-113010-1742211410.130.wav"
ALONE = "in-0201234000-0409876543-20260314-120000-1742212800.140.wav"
STORE = '[storage]\nbackend = "filesystem"\n'


def _line(uniqueid: str, linkedid: str, start: str, dstchannel: str, sequence: str) -> str:
    fields = [
        "", "0401234567", "0201234000", "from-pstn", '"Asiakas" <0401234567>',
        "PJSIP/trunk-00000001", dstchannel, "Dial", "PJSIP/2101", start, start, start, "30",
        "25", "ANSWERED", "DOCUMENTATION", uniqueid, "", "", linkedid, sequence,
    ]  # fmt: skip
    return ",".join('"' + f.replace('"', '""') + '"' for f in fields)


@pytest.fixture
def runtime(tmp_path: Path, empty_catalogue_url: str) -> Iterator[Runtime]:
    require_ffmpeg()
    tone = tmp_path / "tone.wav"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000:duration=2", str(tone))
    day = tmp_path / "monitor" / DAY
    for name in (FIRST, SECOND, ALONE):
        put(day / name, tone)
    cdr = tmp_path / "cdr" / "Master.csv"
    cdr.parent.mkdir()
    lines = [
        _line("1742211234.117", "1742211234.117", "2026-03-14 11:26:53", "PJSIP/2101-02", "1"),
        _line("1742211410.130", "1742211234.117", "2026-03-14 11:30:10", "PJSIP/2102-03", "2"),
        cdr_line(
            "1742212800.140",
            "2026-03-14 12:00:00",
            src="0409876543",
            dst="0201234000",
            context="from-pstn",
            channel="PJSIP/trunk-4",
            dstchannel="PJSIP/2103-5",
        ),
    ]
    cdr.write_text("\n".join(lines) + "\n", encoding="utf-8")
    engine = create_catalogue_engine(empty_catalogue_url)
    upgrade_schema(engine)
    engine.dispose()
    runtime = Runtime(make_settings(tmp_path, empty_catalogue_url, STORE))
    runtime.store.create()
    yield runtime
    runtime.close()


def test_the_parts_of_a_transferred_call_share_its_linkedid(runtime: Runtime) -> None:
    run_ingest(runtime.settings, once=True)

    archived = recordings(runtime)
    assert sorted(archived) == sorted([FIRST, SECOND, ALONE])
    assert archived[FIRST].call_id == "1742211234.117"
    assert archived[FIRST].linked_call_id == "1742211234.117"  # the first part: its own
    assert archived[SECOND].call_id == "1742211410.130"
    assert archived[SECOND].linked_call_id == "1742211234.117"
    assert archived[ALONE].linked_call_id is None  # no linkedid logged


def test_a_contact_record_links_a_transfer_by_its_initial_contact() -> None:
    contact = "7d1a0c5e-0000-4000-8000-000000000002"
    record = {
        "ContactId": contact,
        "InitiationTimestamp": dt.datetime(2026, 3, 14, 9, 30, tzinfo=dt.UTC).isoformat(),
        "InitiationMethod": "TRANSFER",
        "PreviousContactId": "7d1a0c5e-0000-4000-8000-000000000001",
        "InitialContactId": "7d1a0c5e-0000-4000-8000-000000000001",
    }
    facts = record_facts(contact, record)
    assert facts.linked_call_id == "7d1a0c5e-0000-4000-8000-000000000001"
    first = {**record, "InitialContactId": None, "InitiationMethod": "INBOUND"}
    assert record_facts(contact, first).linked_call_id == contact  # the first of the chain
