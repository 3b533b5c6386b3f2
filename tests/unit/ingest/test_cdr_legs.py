"""Asterisk CDRs as cdr_csv writes them: every column layout, one row per dial leg, Local
channel pairs, the repeated hour at the end of daylight saving time, Latin-1 caller names.

Lines follow the Asterisk documentation's cdr_csv column order: accountcode, src, dst,
dcontext, clid, channel, dstchannel, lastapp, lastdata, start, answer, end, duration,
billsec, disposition, amaflags, then uniqueid, userfield (loguniqueid, loguserfield) and
peeraccount, linkedid, sequence (newcdrcolumns).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from recarchive.ingest.cdr import (
    CdrLineError,
    CdrRecord,
    read_master_csv,
    read_master_csv_tail,
    resolve_local,
)
from recarchive.ingest.cdr_legs import CdrLegs, calls_without_recording, is_local_second_half
from recarchive.ingest.sources.spool_names import FREEPBX_NAME, call_facts, record_for_name_time

HELSINKI = ZoneInfo("Europe/Helsinki")


def line(
    *,
    channel: str = "PJSIP/trunk-00000001",
    dstchannel: str = "PJSIP/2101-00000002",
    src: str = "0401234567",
    dst: str = "601",
    dcontext: str = "ext-queues",
    clid: str = '"Asiakas" <0401234567>',
    app: str = "Queue",
    start: str = "2026-03-14 11:26:53",
    answer: str = "2026-03-14 11:27:01",
    end: str = "2026-03-14 11:30:10",
    disposition: str = "ANSWERED",
    tail: tuple[str, ...] = ("1773480413.117", "ivr=1"),
) -> str:
    fields = [
        "", src, dst, dcontext, clid, channel, dstchannel, app, "601,t", start, answer, end,
        "197", "189", disposition, "DOCUMENTATION", *tail,
    ]  # fmt: skip
    return ",".join('"' + f.replace('"', '""') + '"' for f in fields)


def records(tmp_path: Path, *lines: str) -> list[CdrRecord | CdrLineError]:
    path = tmp_path / "Master.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return list(read_master_csv(path, HELSINKI))


def only(entries: list[CdrRecord | CdrLineError]) -> CdrRecord:
    [record] = entries
    assert isinstance(record, CdrRecord), record
    return record


@pytest.mark.parametrize(
    ("tail", "uniqueid", "userfield", "linkedid", "sequence"),
    [
        ((), "", "", "", ""),
        (("1773480413.117",), "1773480413.117", "", "", ""),
        (("ivr=1",), "", "ivr=1", "", ""),
        (("pbx1-1773480413.117",), "pbx1-1773480413.117", "", "", ""),
        (("1773480413.117", "ivr=1"), "1773480413.117", "ivr=1", "", ""),
        (("acct", "1773480413.100", "12"), "", "", "1773480413.100", "12"),
        (("1773480413.117", "acct", "1773480413.100", "12"), "1773480413.117", "",
         "1773480413.100", "12"),
        (("1773480413.117", "ivr=1", "acct", "1773480413.100", "12"), "1773480413.117", "ivr=1",
         "1773480413.100", "12"),
        (("1773480413.117", "ivr=1", "acct", "1773480413.100", "12", "x", "y"), "1773480413.117",
         "ivr=1", "1773480413.100", "12"),
    ],
    ids=["16", "17-uniqueid", "17-userfield", "17-sysname", "18", "19", "20", "21", "23"],
)  # fmt: skip
def test_each_column_layout_is_told_by_its_count(
    tmp_path: Path,
    tail: tuple[str, ...],
    uniqueid: str,
    userfield: str,
    linkedid: str,
    sequence: str,
) -> None:
    record = only(records(tmp_path, line(tail=tail)))
    assert (record.uniqueid, record.userfield) == (uniqueid, userfield)
    assert (record.linkedid, record.sequence) == (linkedid, sequence)
    assert record.peeraccount == ("acct" if linkedid else "")
    assert record.start == dt.datetime(2026, 3, 14, 9, 26, 53, tzinfo=dt.UTC)
    assert record.agent == "2101"


def test_fewer_than_16_columns_is_a_line_error(tmp_path: Path) -> None:
    [error] = records(tmp_path, line(tail=())[: line(tail=()).rindex(',"')])
    assert isinstance(error, CdrLineError)
    assert error.reason == "15 columns, expected at least 16"


def legs_of(entries: list[CdrRecord | CdrLineError]) -> CdrLegs:
    legs = CdrLegs()
    for entry in entries:
        assert isinstance(entry, CdrRecord), entry
        legs.add(entry)
    return legs


def test_a_forked_dial_is_the_leg_that_answered(tmp_path: Path) -> None:
    """A ring group rings three phones: three rows under the caller's uniqueid."""
    ids = ("1773480413.117", "", "", "1773480413.117", "3")
    rows = [
        line(dstchannel="PJSIP/2101-00000002", disposition="NO ANSWER", answer="",
             end="2026-03-14 11:27:01", tail=ids),
        line(dstchannel="PJSIP/2102-00000003", tail=ids),
        line(dstchannel="PJSIP/2103-00000004", disposition="NO ANSWER", answer="",
             end="2026-03-14 11:27:01", tail=ids),
    ]  # fmt: skip
    legs = legs_of(records(tmp_path, *rows))
    call = legs.by_uniqueid["1773480413.117"]
    assert call.agent == "2102"
    assert call.answer == dt.datetime(2026, 3, 14, 9, 27, 1, tzinfo=dt.UTC)
    assert calls_without_recording(legs, {"1773480413.117"}, need_recordingfile=False) == []
    [missing] = calls_without_recording(legs, set(), need_recordingfile=False)
    assert missing.agent == "2102"


def test_a_queue_call_through_local_channels_names_the_device_that_talked(tmp_path: Path) -> None:
    """Queue members are Local channels; the ;2 half's own row dials the phone."""
    caller, member = "1773480413.117", "1773480421.120"
    rows = [
        line(dstchannel="Local/2101@from-queue-00000012;1", disposition="NO ANSWER", answer="",
             tail=(caller, "", "", caller, "10")),
        line(dstchannel="Local/2107@from-queue-00000013;1", tail=(caller, "", "", caller, "11")),
        line(channel="Local/2101@from-queue-00000012;2", dstchannel="PJSIP/2101-0000001a",
             disposition="NO ANSWER", answer="", tail=("1773480421.119", "", "", caller, "12")),
        line(channel="Local/2107@from-queue-00000013;2", dstchannel="PJSIP/2105-0000001b",
             tail=(member, "", "", caller, "13")),
    ]  # fmt: skip
    legs = legs_of(records(tmp_path, *rows))
    assert legs.by_uniqueid[caller].agent == "2105"  # the device, not the member's number
    assert legs.by_uniqueid[caller].talked_channel == "PJSIP/2105-0000001b"
    assert is_local_second_half(legs.by_uniqueid[member])
    # the ;2 row is answered and has no recording: no report of its own
    assert calls_without_recording(legs, {caller}, need_recordingfile=False) == []
    [missing] = calls_without_recording(legs, set(), need_recordingfile=False)
    assert missing.uniqueid == caller


def test_a_chain_of_local_channels_is_followed_and_a_loop_ends(tmp_path: Path) -> None:
    caller = "1773480413.117"
    rows = [
        line(dstchannel="Local/601@from-queue-00000001;1", tail=(caller,)),
        line(channel="Local/601@from-queue-00000001;2",
             dstchannel="Local/2101@from-internal-00000002;1", tail=("1773480414.118",)),
        line(channel="Local/2101@from-internal-00000002;2", dstchannel="PJSIP/2104-00000009",
             tail=("1773480414.119",)),
        line(dstchannel="Local/9@loop-00000005;1", tail=("1773480500.130",)),
        line(channel="Local/9@loop-00000005;2", dstchannel="Local/9@loop-00000005;1",
             tail=("1773480500.131",)),
    ]  # fmt: skip
    legs = legs_of(records(tmp_path, *rows))
    assert legs.by_uniqueid[caller].agent == "2104"
    assert legs.by_uniqueid["1773480500.130"].agent == "9"  # the Local channel's own extension


def test_one_report_per_linkedid_when_none_of_its_uniqueids_was_recorded(tmp_path: Path) -> None:
    """An attended transfer: two answered calls, one linkedid."""
    rows = [
        line(tail=("1773480413.117", "", "", "1773480413.117", "1")),
        line(channel="PJSIP/2101-00000002", dstchannel="PJSIP/2102-00000003",
             tail=("1773480500.130", "", "", "1773480413.117", "2")),
    ]  # fmt: skip
    legs = legs_of(records(tmp_path, *rows))
    assert len(calls_without_recording(legs, set(), need_recordingfile=False)) == 1
    assert calls_without_recording(legs, {"1773480500.130"}, need_recordingfile=False) == []


# 2025-10-26: Helsinki goes from 04:00 EEST back to 03:00 EET; 03:00-04:00 happens twice.
FIRST_0320 = dt.datetime(2025, 10, 26, 0, 20, tzinfo=dt.UTC)  # 03:20 EEST
SECOND_0320 = dt.datetime(2025, 10, 26, 1, 20, tzinfo=dt.UTC)  # 03:20 EET


@pytest.mark.parametrize("utc", [FIRST_0320, SECOND_0320], ids=["first-hour", "second-hour"])
def test_the_repeated_hour_is_told_by_the_uniqueid_epoch(tmp_path: Path, utc: dt.datetime) -> None:
    epoch = int(utc.timestamp())
    record = only(
        records(
            tmp_path,
            line(start="2025-10-26 03:20:00", answer="2025-10-26 03:20:09",
                 end="2025-10-26 03:58:00", tail=(f"pbx1-{epoch}.5", "")),
        )
    )  # fmt: skip
    assert record.start == utc
    assert record.answer == utc + dt.timedelta(seconds=9)
    assert record.end == utc + dt.timedelta(minutes=38)
    name = FREEPBX_NAME.match(f"q-602-0401234567-20251026-032000-pbx1-{epoch}.5.wav")
    assert name is not None
    facts = call_facts(None, name, HELSINKI)
    assert facts is not None
    assert facts.started_at == utc


def test_a_call_across_the_change_ends_in_the_second_hour(tmp_path: Path) -> None:
    epoch = int(FIRST_0320.timestamp())
    record = only(
        records(
            tmp_path,
            line(start="2025-10-26 03:20:00", answer="2025-10-26 03:50:00",
                 end="2025-10-26 03:05:00", tail=(f"{epoch}.5",)),
        )
    )  # fmt: skip
    assert record.end == dt.datetime(2025, 10, 26, 1, 5, tzinfo=dt.UTC)
    assert record.talk_time == dt.timedelta(minutes=15)


def test_an_epoch_far_from_the_local_time_is_not_trusted() -> None:
    local = dt.datetime(2025, 10, 26, 3, 20)
    far = SECOND_0320 + dt.timedelta(days=3)
    assert resolve_local(local, HELSINKI, near=far) == FIRST_0320
    assert resolve_local(local, HELSINKI, near=SECOND_0320) == SECOND_0320
    # the hour skipped in spring: the epoch's reading
    skipped = dt.datetime(2026, 3, 29, 3, 30)
    epoch = dt.datetime(2026, 3, 29, 0, 30, tzinfo=dt.UTC)
    assert resolve_local(skipped, HELSINKI, near=epoch) == epoch


def test_latin1_caller_names_parse_in_whole_and_in_tail_reads(tmp_path: Path) -> None:
    good = line(clid='"Matti Meikäläinen" <0401234567>', tail=("1773480413.117", "ivr=1"))
    raw = good.encode("latin-1") + b"\n" + line(tail=("1773480500.130", "")).encode() + b"\n"
    path = tmp_path / "Master.csv"
    path.write_bytes(raw)
    whole = list(read_master_csv(path, HELSINKI))
    tail, _, _ = read_master_csv_tail(path, HELSINKI, None, take_unterminated=True)
    for entries in (whole, tail):
        first, second = entries
        assert isinstance(first, CdrRecord)
        assert isinstance(second, CdrRecord)
        assert (first.uniqueid, first.channel, first.dstchannel) == (
            "1773480413.117", "PJSIP/trunk-00000001", "PJSIP/2101-00000002",
        )  # fmt: skip
        assert first.start == dt.datetime(2026, 3, 14, 9, 26, 53, tzinfo=dt.UTC)
        assert second.uniqueid == "1773480500.130"


def test_a_line_without_uniqueid_is_found_by_a_freepbx_name(tmp_path: Path) -> None:
    rows = [
        line(dstchannel="Local/2101@from-queue-00000012;1", tail=()),
        line(channel="Local/2101@from-queue-00000012;2", dstchannel="PJSIP/2103-0000001a",
             src="0401234567", dst="2101", tail=()),
        line(src="0509998888", dst="602", start="2026-03-14 11:26:54", tail=()),
    ]  # fmt: skip
    legs = legs_of(records(tmp_path, *rows))
    name = FREEPBX_NAME.match("q-601-0401234567-20260314-112655-1773480413.117.wav")
    assert name is not None
    record = record_for_name_time(name, legs, HELSINKI)
    assert record is not None
    assert (record.line, record.agent) == (1, "2103")
    late = FREEPBX_NAME.match("q-601-0401234567-20260314-112659-1773480413.117.wav")
    assert late is not None
    assert record_for_name_time(late, legs, HELSINKI) is None
    missing = calls_without_recording(legs, {"line:1"}, need_recordingfile=False)
    assert [m.line for m in missing] == [3]
