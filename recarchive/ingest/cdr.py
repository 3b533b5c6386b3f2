"""Call detail records from Asterisk (``Master.csv``) and FreePBX (its ``cdr`` table).

Asterisk's cdr_csv writes one call leg per line, every field double-quoted,
``""`` for a quote inside a field, no header, in the column order of
:data:`MASTER_COLUMNS` (``uniqueid`` and ``userfield`` when enabled; newer
versions may append more columns, which are ignored). The FreePBX export has
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
_EXPORT_REQUIRED = ("calldate", "src", "dst", "disposition", "uniqueid", "recordingfile")
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_IVR = re.compile(r"(?:^|[;,&\s])ivr=(\w+)")
_CHANNEL_PEER = re.compile(r"^(?:PJSIP|SIP|IAX2|Local|DAHDI)/([^-@/]+)")


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

    @property
    def answered(self) -> bool:
        return self.disposition.upper() == "ANSWERED"

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
        """The answering extension for inbound calls, the calling one for outbound."""
        match = _CHANNEL_PEER.match(self.dstchannel)
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


def _parse_time(text: str, zone: ZoneInfo, column: str, *, required: bool) -> dt.datetime | None:
    text = text.strip()
    if not text:
        if required:
            raise ValueError(f"{column} is empty")
        return None
    try:
        local = dt.datetime.strptime(text, _TIME_FORMAT)
    except ValueError:
        raise ValueError(f"{column} is not a YYYY-MM-DD HH:MM:SS time") from None
    return local.replace(tzinfo=zone).astimezone(dt.UTC)


def _split(text: str) -> list[str]:
    rows = list(csv.reader([text], strict=True))
    return rows[0] if rows else []


def _rows(
    lines: Iterator[str], first: int, columns: tuple[str, ...], *, exact: bool
) -> Iterator[tuple[int, dict[str, str]] | CdrLineError]:
    """Each non-empty line parsed on its own, as ``(line number, row)`` or an error."""
    for number, text in enumerate(lines, start=first):
        text = text.rstrip("\r\n")
        if not text.strip():
            continue
        try:
            fields = _split(text)
        except csv.Error:
            yield CdrLineError(number, "broken quoting")
            continue
        if exact and len(fields) != len(columns):
            yield CdrLineError(number, f"{len(fields)} columns, header has {len(columns)}")
        elif len(fields) < len(columns):
            yield CdrLineError(number, f"{len(fields)} columns, expected at least {len(columns)}")
        else:
            yield number, dict(zip(columns, fields, strict=False))


def _records(
    rows: Iterator[tuple[int, dict[str, str]] | CdrLineError], zone: ZoneInfo, start_column: str
) -> Iterator[CdrRecord | CdrLineError]:
    for entry in rows:
        if isinstance(entry, CdrLineError):
            yield entry
            continue
        number, row = entry
        try:
            yield _record(number, row, zone, start_column=start_column)
        except ValueError as exc:
            yield CdrLineError(number, str(exc))


def read_master_csv(path: Path, zone: ZoneInfo) -> Iterator[CdrRecord | CdrLineError]:
    """Records and line errors of an Asterisk ``Master.csv``, in file order.

    Trailing columns beyond :data:`MASTER_COLUMNS` (newer Asterisk versions) are ignored.
    """
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        yield from _records(_rows(handle, 1, MASTER_COLUMNS, exact=False), zone, "start")


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
            text = raw.decode("utf-8", errors="replace")
            entries.extend(
                _records(_rows(iter([text]), line, MASTER_COLUMNS, exact=False), zone, "start")
            )
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


def _record(number: int, row: dict[str, str], zone: ZoneInfo, *, start_column: str) -> CdrRecord:
    uniqueid = row.get("uniqueid", "").strip()
    if not uniqueid:
        raise ValueError("uniqueid is empty")
    start = _parse_time(row.get(start_column, ""), zone, start_column, required=True)
    assert start is not None
    answer = _parse_time(row.get("answer", ""), zone, "answer", required=False)
    end = _parse_time(row.get("end", ""), zone, "end", required=False)
    if end is None and row.get("duration", "").strip().isdigit():
        end = start + dt.timedelta(seconds=int(row["duration"]))
    return CdrRecord(
        line=number,
        uniqueid=uniqueid,
        start=start,
        answer=answer,
        end=end,
        src=row.get("src", "").strip(),
        dst=row.get("dst", "").strip(),
        dcontext=row.get("dcontext", "").strip(),
        channel=row.get("channel", "").strip(),
        dstchannel=row.get("dstchannel", "").strip(),
        lastapp=row.get("lastapp", "").strip(),
        lastdata=row.get("lastdata", "").strip(),
        disposition=row.get("disposition", "").strip(),
        userfield=row.get("userfield", "").strip(),
        did=row.get("did", "").strip(),
        recordingfile=row.get("recordingfile", "").strip(),
        cnum=row.get("cnum", "").strip(),
    )
