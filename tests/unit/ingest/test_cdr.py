"""CDR parsing: Asterisk Master.csv and the FreePBX cdr export, good lines and broken ones."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from recarchive.ingest.cdr import (
    CdrLineError,
    CdrRecord,
    read_database_rows,
    read_freepbx_export,
    read_master_csv,
    read_master_csv_tail,
)

HELSINKI = ZoneInfo("Europe/Helsinki")

GOOD = (
    '"","0401234567","0201234000","from-pstn","""Matti Meikäläinen"" <0401234567>",'
    '"PJSIP/trunk-00000001","PJSIP/2001-00000002","Queue","601,t","2026-03-14 11:26:53",'
    '"2026-03-14 11:27:01","2026-03-14 11:30:10","197","189","ANSWERED","DOCUMENTATION",'
    '"1742211234.117","reason=billing;ivr=2"'
)
UNANSWERED = (
    '"","0501112222","0201234000","from-pstn","<0501112222>","PJSIP/trunk-00000003","",'
    '"Queue","602,t","2026-03-14 12:00:00","","2026-03-14 12:00:30","30","0","NO ANSWER",'
    '"DOCUMENTATION","1742213000.120",""'
)
TRAILING = GOOD.replace("1742211234.117", "1742211299.130") + ',"peer","1742211299.130","7"'


def write(tmp_path: Path, *lines: str, name: str = "Master.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_master_csv_line_with_quotes_in_clid(tmp_path: Path) -> None:
    [record] = list(read_master_csv(write(tmp_path, GOOD), HELSINKI))
    assert isinstance(record, CdrRecord)
    assert record.uniqueid == "1742211234.117"
    assert record.start == dt.datetime(2026, 3, 14, 9, 26, 53, tzinfo=dt.UTC)
    assert record.answered
    assert record.queue == "601"
    assert record.ivr == "2"
    assert record.agent == "2001"
    assert record.src == "0401234567"


def test_unanswered_and_trailing_columns(tmp_path: Path) -> None:
    records = list(read_master_csv(write(tmp_path, UNANSWERED, TRAILING), HELSINKI))
    assert [type(r) for r in records] == [CdrRecord, CdrRecord]
    first, second = records
    assert isinstance(first, CdrRecord)
    assert isinstance(second, CdrRecord)
    assert not first.answered
    assert first.answer is None
    assert second.uniqueid == "1742211299.130"


def test_broken_lines_are_reported_by_number_without_content(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        GOOD,
        '"","0401234567","020123"4000","from-pstn"',
        '"only","three","columns"',
        GOOD.replace("2026-03-14 11:26:53", "14.3.2026 11:26"),
        "",
        UNANSWERED,
    )
    entries = list(read_master_csv(path, HELSINKI))
    errors = [e for e in entries if isinstance(e, CdrLineError)]
    assert [e.line for e in errors] == [2, 3, 4]
    assert "expected at least 16" in errors[1].reason
    assert "start is not a YYYY-MM-DD HH:MM:SS time" in errors[2].reason
    for error in errors:
        assert "0401234567" not in error.reason
    assert sum(isinstance(e, CdrRecord) for e in entries) == 2


def test_freepbx_export_with_recordingfile(tmp_path: Path) -> None:
    header = (
        "calldate,clid,src,dst,dcontext,channel,dstchannel,lastapp,lastdata,duration,billsec,"
        "disposition,amaflags,accountcode,uniqueid,userfield,did,recordingfile,cnum,cnam,linkedid"
    )
    row = (
        '2026-03-14 11:26:53,"""Asiakas"" <0401234567>",0401234567,601,ext-queues,'
        'PJSIP/trunk-1,PJSIP/2002-2,Queue,"601,t",197,189,ANSWERED,3,,1742211234.117,,'
        "0201234000,in-0201234000-0401234567-20260314-112653-1742211234.117.wav,"
        "0401234567,Asiakas,1742211234.117"
    )
    records = list(
        read_freepbx_export(write(tmp_path, header, row, "a,b", name="cdr.csv"), HELSINKI)
    )
    record = records[0]
    assert isinstance(record, CdrRecord)
    assert record.recordingfile.endswith("1742211234.117.wav")
    assert record.did == "0201234000"
    assert record.queue == "601"
    assert record.end == record.start + dt.timedelta(seconds=197)
    assert isinstance(records[1], CdrLineError)
    assert records[1].line == 3


def test_a_database_row_is_the_record_its_export_line_is(tmp_path: Path) -> None:
    header = "calldate,src,dst,dcontext,channel,dstchannel,lastapp,lastdata,duration,"
    header += "disposition,uniqueid,userfield,did,recordingfile,cnum"
    values = [
        "2026-03-14 11:26:53", "0401234567", "601", "ext-queues", "PJSIP/trunk-1",
        "PJSIP/2002-2", "Queue", "601,t", "197", "ANSWERED", "1742211234.117",
        "reason=moving", "0201234000", "q-601-0401234567-20260314-112653-1742211234.117.wav",
        "0401234567",
    ]  # fmt: skip
    line = ",".join(f'"{value}"' for value in values)
    [from_export] = read_freepbx_export(write(tmp_path, header, line, name="e.csv"), HELSINKI)
    fields = dict(zip(header.split(","), values, strict=True))
    broken = {**fields, "calldate": "0000-00-00 00:00:00", "uniqueid": "1742211299.130"}
    from_row, error = read_database_rows(
        [("1742211234.117#117", fields), ("1742211299.130#130", broken)], HELSINKI
    )

    assert from_row == dataclasses.replace(from_export, line=0, ref="1742211234.117#117")
    assert error == CdrLineError(
        0, "calldate is not a YYYY-MM-DD HH:MM:SS time", ref="1742211299.130#130"
    )


def test_freepbx_export_without_required_columns(tmp_path: Path) -> None:
    [error] = list(read_freepbx_export(write(tmp_path, "calldate,src", name="x.csv"), HELSINKI))
    assert isinstance(error, CdrLineError)
    assert "dst, disposition, uniqueid, recordingfile" in error.reason


def _ids(entries: list[CdrRecord | CdrLineError]) -> list[str | int]:
    return [e.uniqueid if isinstance(e, CdrRecord) else e.line for e in entries]


def test_master_csv_tail_reads_only_what_was_appended(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    entries, cursor, restarted = read_master_csv_tail(path, HELSINKI, None, take_unterminated=False)
    assert (_ids(entries), restarted, cursor.next_line) == (["1742211234.117"], True, 2)

    with path.open("a", encoding="utf-8") as handle:
        handle.write(UNANSWERED + "\n" + '"broken","line\n' + TRAILING[:40])  # last: half written
    entries, cursor, restarted = read_master_csv_tail(
        path, HELSINKI, cursor, take_unterminated=False
    )
    assert (_ids(entries), restarted) == (["1742213000.120", 3], False)
    assert cursor.next_line == 4

    with path.open("a", encoding="utf-8") as handle:
        handle.write(TRAILING[40:])  # finished, but without its newline: taken once quiet
    entries, cursor, _ = read_master_csv_tail(path, HELSINKI, cursor, take_unterminated=False)
    assert entries == []
    entries, cursor, _ = read_master_csv_tail(path, HELSINKI, cursor, take_unterminated=True)
    assert _ids(entries) == ["1742211299.130"]
    assert [e.line for e in entries] == [4]


def test_master_csv_tail_starts_again_after_rotation_or_truncation(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD, UNANSWERED)
    _, cursor, _ = read_master_csv_tail(path, HELSINKI, None, take_unterminated=False)
    path.rename(tmp_path / "Master.csv.1")
    rotated = write(tmp_path, TRAILING)
    entries, cursor, restarted = read_master_csv_tail(
        rotated, HELSINKI, cursor, take_unterminated=False
    )
    assert (_ids(entries), restarted) == (["1742211299.130"], True)
    rotated.write_text("", encoding="utf-8")  # truncated in place (copytruncate)
    entries, cursor, restarted = read_master_csv_tail(
        rotated, HELSINKI, cursor, take_unterminated=False
    )
    assert (entries, restarted, cursor.offset) == ([], True, 0)
