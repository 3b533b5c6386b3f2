"""Call detail records from Asterisk (``Master.csv``) and FreePBX (its ``cdr`` table).

Asterisk's cdr_csv writes one call leg per line, every field double-quoted,
``""`` for a quote inside a field, no header: the 16 standard columns, then
``uniqueid`` (``loguniqueid``), ``userfield`` (``loguserfield``) and, with
``newcdrcolumns``, ``peeraccount``, ``linkedid`` and ``sequence``; each line's
layout is told by its number of columns (:func:`master_layout`), columns past
the 21st are ignored. A call has one line per dial leg
(:mod:`recarchive.ingest.cdr_legs` picks the leg that talked). The FreePBX export has
a header row and a ``recordingfile`` column. Rows read from the FreePBX
database itself (:mod:`recarchive.ingest.sources.cdr_db`) come as text
fields like an export's and go through the same parsing
(:func:`read_database_rows`), so that every path yields the same records.

Each physical line is parsed on its own, so one broken line (a stray quote,
missing columns) is reported by its number and cannot swallow the lines
after it. Nothing here logs or raises field values: they hold phone numbers
and names.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

MASTER_COLUMNS = (
    "accountcode",
    "src",
    "dst",
    "dcontext",
    "clid",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
    "uniqueid",
    "userfield",
)
#: The columns every cdr_csv line has, whatever cdr.conf logs besides.
STANDARD_COLUMNS = MASTER_COLUMNS[:16]
#: What ``newcdrcolumns = yes`` appends after uniqueid and userfield.
NEW_COLUMNS = ("peeraccount", "linkedid", "sequence")
_EXPORT_REQUIRED = ("calldate", "src", "dst", "disposition", "uniqueid", "recordingfile")
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_IVR = re.compile(r"(?:^|[;,&\s])ivr=(\w+)")
_CHANNEL_PEER = re.compile(r"^(?:PJSIP|SIP|IAX2|Local|DAHDI)/([^-@/]+)")
#: A uniqueid as Asterisk makes it: ``[<systemname>-]<epoch>.<counter>``.
UNIQUEID = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9_.-]*-)?(?P<epoch>\d+)\.\d+$")
#: An epoch prefix farther than this from the local time it should match is not trusted.
_EPOCH_TRUST = dt.timedelta(days=1)


@dataclasses.dataclass(frozen=True)
class CdrRecord:
    """One CDR line, with times as aware UTC datetimes."""

    #: The line in its file; 0 for a database row (``ref`` tells which).
    line: int
    uniqueid: str
    start: dt.datetime
    answer: dt.datetime | None
    end: dt.datetime | None
    src: str
    dst: str
    dcontext: str
    channel: str
    dstchannel: str
    lastapp: str
    lastdata: str
    disposition: str
    userfield: str
    did: str = ""
    recordingfile: str = ""
    cnum: str = ""
    #: A database row's stable name (``<uniqueid>#<sequence>``); empty for a file line.
    ref: str = ""
    #: ``newcdrcolumns``: the legs of one call share its ``linkedid``; empty when not logged.
    peeraccount: str = ""
    linkedid: str = ""
    sequence: str = ""
    #: The device channel that talked when ``dstchannel`` is a Local channel whose
    #: other half dialled it (set by :mod:`recarchive.ingest.cdr_legs`); else empty.
    talked_channel: str = ""

    @property
    def answered(self) -> bool:
        return self.disposition.upper() == "ANSWERED"

    @property
    def talk_time(self) -> dt.timedelta:
        """How long the leg talked (``billsec``): from its answer to its end; zero unanswered."""
        if not self.answered or self.answer is None or self.end is None:
            return dt.timedelta(0)
        return max(self.end - self.answer, dt.timedelta(0))

    @property
    def queue(self) -> str | None:
        if self.lastapp.lower() == "queue" and self.lastdata:
            return self.lastdata.split(",")[0] or None
        if self.dcontext == "ext-queues" and self.dst:
            return self.dst
        return None

    @property
    def ivr(self) -> str | None:
        match = _IVR.search(self.userfield)
        return match.group(1) if match else None

    @property
    def agent(self) -> str | None:
        """The answering extension for inbound calls, the calling one for outbound.

        Through a Local channel it is the device its other half reached
        (``talked_channel``), else the Local channel's extension.
        """
        match = _CHANNEL_PEER.match(self.talked_channel or self.dstchannel)
        if match and self.dcontext != "from-internal":
            return match.group(1)
        match = _CHANNEL_PEER.match(self.channel)
        if match and self.dcontext == "from-internal":
            return match.group(1)
        return None


@dataclasses.dataclass(frozen=True)
class CdrLineError:
    """A line that could not be read, and why (never the line's content)."""

    line: int
    reason: str
    #: A database row's stable name; empty for a file line.
    ref: str = ""


def uniqueid_epoch(uniqueid: str) -> dt.datetime | None:
    """When the channel of ``uniqueid`` was made (its epoch prefix), or None without one."""
    match = UNIQUEID.match(uniqueid)
    if match is None or len(match.group("epoch")) < 9:
        return None
    return dt.datetime.fromtimestamp(int(match.group("epoch")), dt.UTC)


def resolve_local(
    local: dt.datetime,
    zone: ZoneInfo,
    *,
    near: dt.datetime | None = None,
    after: dt.datetime | None = None,
) -> dt.datetime:
    """The UTC time of the naive local time ``local``, which may be ambiguous.

    In the hour that repeats when daylight saving time ends, a local time is
    two instants (and in the hour skipped in spring none; zoneinfo offers
    two readings). A start is read as the one nearest ``near`` (the
    uniqueid's epoch, when it is within a day); a later time of the same
    call (answer, end) as the first one not before ``after`` (the start).
    Otherwise the first reading (``fold=0``) stands.
    """
    first = local.replace(tzinfo=zone, fold=0).astimezone(dt.UTC)
    second = local.replace(tzinfo=zone, fold=1).astimezone(dt.UTC)
    if first == second:
        return first
    readings = sorted((first, second))
    if after is not None:
        return next((t for t in readings if t >= after), first)
    if near is not None and abs(near - first) <= _EPOCH_TRUST:
        return min(readings, key=lambda t: abs(t - near))
    return first


def _parse_time(
    text: str,
    zone: ZoneInfo,
    column: str,
    *,
    required: bool,
    near: dt.datetime | None = None,
    after: dt.datetime | None = None,
) -> dt.datetime | None:
    text = text.strip()
    if not text:
        if required:
            raise ValueError(f"{column} is empty")
        return None
    try:
        local = dt.datetime.strptime(text, _TIME_FORMAT)
    except ValueError:
        raise ValueError(f"{column} is not a YYYY-MM-DD HH:MM:SS time") from None
    return resolve_local(local, zone, near=near, after=after)


def master_layout(fields: list[str]) -> tuple[str, ...]:
    """The columns of a cdr_csv line of ``len(fields)`` columns (at least 16).

    16: the standard ones; 18: with uniqueid and userfield; 19: with
    peeraccount, linkedid and sequence only; 21 (or more, the rest ignored):
    all. 17 and 20 columns log one of uniqueid and userfield: the uniqueid
    when the 17th field looks like one (Asterisk's default logs it), else the
    userfield.
    """
    count = len(fields)
    if count >= 21:
        return (*MASTER_COLUMNS, *NEW_COLUMNS)
    if count in (16, 18, 19):
        return {16: STANDARD_COLUMNS, 18: MASTER_COLUMNS, 19: (*STANDARD_COLUMNS, *NEW_COLUMNS)}[
            count
        ]
    extra = "uniqueid" if UNIQUEID.match(fields[16].strip()) else "userfield"
    return (*STANDARD_COLUMNS, extra, *(NEW_COLUMNS if count == 20 else ()))


def decode_line(raw: bytes) -> str:
    """A CDR line as text: UTF-8, or Latin-1 when it is not (an older phone's caller name).

    Latin-1 reads every byte, so a line never fails to decode and its ASCII
    fields (uniqueid, times, channels) stay as they are.
    """
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _split(text: str) -> list[str]:
    rows = list(csv.reader([text], strict=True))
    return rows[0] if rows else []


def _rows(
    lines: Iterable[str], first: int, columns: tuple[str, ...] | None, *, exact: bool
) -> Iterator[tuple[int, dict[str, str]] | CdrLineError]:
    """Each non-empty line parsed on its own, as ``(line number, row)`` or an error.

    ``columns`` None: a cdr_csv line, whose columns its count tells (:func:`master_layout`).
    """
    for number, text in enumerate(lines, start=first):
        text = text.rstrip("\r\n")
        if not text.strip():
            continue
        try:
            fields = _split(text)
        except csv.Error:
            yield CdrLineError(number, "broken quoting")
            continue
        if columns is None and len(fields) >= len(STANDARD_COLUMNS):
            yield number, dict(zip(master_layout(fields), fields, strict=False))
            continue
        expected = columns or STANDARD_COLUMNS
        if exact and len(fields) != len(expected):
            yield CdrLineError(number, f"{len(fields)} columns, header has {len(expected)}")
        elif len(fields) < len(expected):
            yield CdrLineError(number, f"{len(fields)} columns, expected at least {len(expected)}")
        else:
            yield number, dict(zip(expected, fields, strict=False))


def _records(
    rows: Iterator[tuple[int, dict[str, str]] | CdrLineError],
    zone: ZoneInfo,
    start_column: str,
    *,
    master: bool = False,
) -> Iterator[CdrRecord | CdrLineError]:
    for entry in rows:
        if isinstance(entry, CdrLineError):
            yield entry
            continue
        number, row = entry
        try:
            yield _record(number, row, zone, start_column=start_column, master=master)
        except ValueError as exc:
            yield CdrLineError(number, str(exc))


def read_master_csv(path: Path, zone: ZoneInfo) -> Iterator[CdrRecord | CdrLineError]:
    """Records and line errors of an Asterisk ``Master.csv``, in file order.

    Each line's layout is told by its column count (:func:`master_layout`);
    a line that is not UTF-8 is read as Latin-1 (:func:`decode_line`).
    """
    with path.open("rb") as handle:
        lines = (decode_line(raw) for raw in handle)
        yield from _records(_rows(lines, 1, None, exact=False), zone, "start", master=True)


@dataclasses.dataclass(frozen=True)
class CdrCursor:
    """How far an append-only ``Master.csv`` has been read: its file identity and offset."""

    device: int
    inode: int
    offset: int
    next_line: int


def read_master_csv_tail(
    path: Path, zone: ZoneInfo, cursor: CdrCursor | None, *, take_unterminated: bool
) -> tuple[list[CdrRecord | CdrLineError], CdrCursor, bool]:
    """The records of ``Master.csv`` after ``cursor``; returns them, the new cursor, and
    whether the file was read from the start (first read, rotated or truncated).

    Asterisk only appends to ``Master.csv``, so each pass reads just the lines
    added since the last one. A last line without its newline is being
    written: it is left for the next pass unless ``take_unterminated`` (the
    file has been quiet for the settle time).
    """
    entries: list[CdrRecord | CdrLineError] = []
    with path.open("rb") as handle:
        stat = os.fstat(handle.fileno())
        same_file = (
            cursor is not None
            and (cursor.device, cursor.inode) == (stat.st_dev, stat.st_ino)
            and stat.st_size >= cursor.offset
        )
        offset, line = (cursor.offset, cursor.next_line) if same_file and cursor else (0, 1)
        handle.seek(offset)
        while raw := handle.readline():
            if not raw.endswith(b"\n") and not take_unterminated:
                break
            rows = _rows([decode_line(raw)], line, None, exact=False)
            entries.extend(_records(rows, zone, "start", master=True))
            offset += len(raw)
            line += 1
    return entries, CdrCursor(stat.st_dev, stat.st_ino, offset, line), not same_file


def read_freepbx_export(path: Path, zone: ZoneInfo) -> Iterator[CdrRecord | CdrLineError]:
    """Records and line errors of a CSV export of the FreePBX ``cdr`` table."""
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
        header_line = handle.readline().rstrip("\r\n")
        try:
            header = tuple(name.strip().lower() for name in _split(header_line))
        except csv.Error:
            yield CdrLineError(1, "header row has broken quoting")
            return
        missing = [name for name in _EXPORT_REQUIRED if name not in header]
        if missing:
            yield CdrLineError(1, f"header lacks the column(s) {', '.join(missing)}")
            return
        yield from _records(_rows(handle, 2, header, exact=True), zone, "calldate")


def read_database_rows(
    rows: Iterable[tuple[str, dict[str, str]]], zone: ZoneInfo
) -> Iterator[CdrRecord | CdrLineError]:
    """Records and row errors of rows of the FreePBX ``cdr`` table, as ``(ref, fields)``.

    The fields are text, as an export of the table has them (``calldate`` as
    ``YYYY-MM-DD HH:MM:SS`` in the PBX's local time); ``ref`` names the row
    in messages and quarantine entries.
    """
    for ref, row in rows:
        try:
            record = _record(0, row, zone, start_column="calldate")
        except ValueError as exc:
            yield CdrLineError(0, str(exc), ref=ref)
            continue
        yield dataclasses.replace(record, ref=ref)


def _record(
    number: int, row: dict[str, str], zone: ZoneInfo, *, start_column: str, master: bool = False
) -> CdrRecord:
    """One row as a record. A cdr_csv line whose layout has no uniqueid keeps it empty
    (such a line can only be matched by its time and numbers); elsewhere it is required."""
    uniqueid = row.get("uniqueid", "").strip()
    if not uniqueid and not (master and "uniqueid" not in row):
        raise ValueError("uniqueid is empty")
    start = _parse_time(
        row.get(start_column, ""), zone, start_column, required=True, near=uniqueid_epoch(uniqueid)
    )
    assert start is not None
    answer = _parse_time(row.get("answer", ""), zone, "answer", required=False, after=start)
    end = _parse_time(row.get("end", ""), zone, "end", required=False, after=answer or start)
    if end is None and row.get("duration", "").strip().isdigit():
        end = start + dt.timedelta(seconds=int(row["duration"]))
    text = {name: row.get(name, "").strip() for name in _TEXT_FIELDS}
    return CdrRecord(line=number, uniqueid=uniqueid, start=start, answer=answer, end=end, **text)


_TEXT_FIELDS = (
    "src", "dst", "dcontext", "channel", "dstchannel", "lastapp", "lastdata", "disposition",
    "userfield", "did", "recordingfile", "cnum", "peeraccount", "linkedid", "sequence",
)  # fmt: skip
