"""FreePBX's CDR database (``asteriskcdrdb.cdr`` on MariaDB/MySQL) as a spool's CDR.

The table has no primary key and Asterisk writes a call's row when the call
ends, with ``calldate`` its start: a long call's row arrives after the rows
of calls that started later. So each pass reads again every row whose
``calldate`` is within ``cdr_window_minutes`` of the newest one read so
far, and keeps only the rows it has not seen (the whole row is the key, so
the legs of one call, which share a uniqueid, stay apart). The newest
``calldate`` read is the bookmark: the pipeline commits it with the work of
the pass, and a restarted process reads from it, less the window. The first
read of all takes the whole table, as Master.csv is read from its start.

Only the columns the matching uses are selected (caller names are not). The
server converts every text column to UTF-8 from the character set the table
declares (FreePBX tables are Latin-1 or UTF-8), hands it over as bytes, and
those are decoded as Master.csv's lines are (undecodable bytes replaced): a
byte that is not UTF-8 never stops the reader. The rows become the very
records a Master.csv or an export gives (:func:`recarchive.ingest.cdr.read_database_rows`).

Failures are translated here: a server that cannot be reached, drops the
connection or times out is :class:`SourceUnavailable` (the source's
discovery pauses until it answers); refused credentials, no such database,
table or column are :class:`SourceMisconfigured`. Messages carry the URL
without its password and the server's message, never row values.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from recarchive.ingest.cdr import CdrLineError, CdrRecord, read_database_rows
from recarchive.ingest.interfaces import SourceMisconfigured, SourceUnavailable

logger = logging.getLogger(__name__)

#: Columns the records are built from; a table without one of these is refused.
REQUIRED_COLUMNS = (
    "calldate",
    "uniqueid",
    "src",
    "dst",
    "dcontext",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "duration",
    "disposition",
)
#: Columns read when the table has them (FreePBX 16/17 has them all).
OPTIONAL_COLUMNS = ("userfield", "did", "recordingfile", "cnum", "linkedid", "sequence")
_NUMERIC = frozenset({"duration", "sequence"})
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
#: MariaDB/MySQL errors that waiting does not cure: the account is refused, or the
#: database, table or a column is missing or not granted.
_PERMANENT = {
    1044: "the account may not use this database",
    1045: "the server refuses the account (user or password)",
    1049: "no such database",
    1054: "the table lacks a column",
    1142: "the account may not read the table (GRANT SELECT)",
    1143: "the account may not read a column of the table",
    1146: "no such table",
    1698: "the server refuses the account",
}
#: A row whose calldate lies further ahead than this (a PBX clock gone wrong) does
#: not move the bookmark, so that it cannot make the window skip today's rows.
_FUTURE_SLACK = dt.timedelta(days=1)


class CdrDatabase:
    """Reads the rows of one FreePBX ``cdr`` table that are new since the last read."""

    def __init__(
        self,
        source: str,
        url: str,
        *,
        password: str | None,
        table: str,
        zone: ZoneInfo,
        window: dt.timedelta,
        timeout_s: float,
    ) -> None:
        parsed = make_url(url).set(drivername="mysql+pymysql")
        if password is not None:
            parsed = parsed.set(password=password)
        self.source = source
        self.url: URL = parsed
        self.table = table
        self.zone = zone
        self.window = window
        self.timeout_s = timeout_s
        #: ``database.table``, as messages and quarantine entries name it.
        self.label = f"{parsed.database}.{table}"
        self._engine: Engine | None = None
        self._columns: tuple[str, ...] | None = None
        #: The newest calldate read (local time of the PBX, ``YYYY-MM-DD HH:MM:SS``).
        self._newest: str | None = None
        #: Rows already handed over that a later read may return again (the window).
        self._seen: dict[tuple[Any, ...], str] = {}
        #: Rows the last read returned, and how many of them were new (for tests and logs).
        self.rows_read = 0
        self.rows_new = 0

    @property
    def safe_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    # --- the bookmark ----------------------------------------------------------

    def restore(self, value: Mapping[str, Any] | None) -> None:
        """Resume from a committed bookmark (None: read the whole table)."""
        newest = (value or {}).get("calldate")
        self._newest = str(newest) if newest else None
        self._seen.clear()

    def bookmark(self) -> dict[str, Any]:
        """The position to commit with this pass's work."""
        return {"calldate": self._newest, "window_minutes": self.window.total_seconds() / 60}

    # --- reading -----------------------------------------------------------------

    def read(self, now: dt.datetime) -> list[CdrRecord | CdrLineError]:
        """The records and row errors of the rows not handed over before, in calldate order.

        Raises :class:`SourceUnavailable` or :class:`SourceMisconfigured`.
        """
        since = self._since()
        try:
            rows = self._fetch(since)
        except DBAPIError as exc:
            self._forget_engine()
            raise self._translate(exc) from None
        except SQLAlchemyError as exc:
            self._forget_engine()
            raise SourceUnavailable(
                f"source {self.source}: CDR database {self.safe_url}: {type(exc).__name__}"
            ) from None
        horizon = (now.astimezone(self.zone) + _FUTURE_SLACK).strftime(_TIME_FORMAT)
        fresh: list[tuple[str, dict[str, str]]] = []
        newest = self._newest
        for row in rows:
            key = tuple(row.values())
            if key in self._seen:
                continue
            fields = _text_fields(row)
            calldate = fields["calldate"]
            self._seen[key] = calldate
            fresh.append((_ref(fields), fields))
            later = newest is None or calldate > newest
            if later and _plausible(calldate) and calldate <= horizon:
                newest = calldate
        self._newest = newest
        floor = self._since()
        if floor is not None:
            self._seen = {k: c for k, c in self._seen.items() if c >= floor}
        self.rows_read, self.rows_new = len(rows), len(fresh)
        logger.info(
            "cdr_rows_read",
            extra={"source": self.source, "rows": len(rows), "new_rows": len(fresh)},
        )
        return list(read_database_rows(fresh, self.zone))

    def close(self) -> None:
        self._forget_engine()

    def _since(self) -> str | None:
        if self._newest is None:
            return None
        newest = dt.datetime.strptime(self._newest, _TIME_FORMAT)
        return (newest - self.window).strftime(_TIME_FORMAT)

    def _fetch(self, since: str | None) -> list[dict[str, Any]]:
        engine = self._engine_now()
        with engine.connect() as connection:
            if self._columns is None:
                self._columns = self._check_table(connection)
            selected = ", ".join(_select_expression(column) for column in self._columns)
            order = "calldate, uniqueid" + (", sequence" if "sequence" in self._columns else "")
            where = "WHERE calldate >= :since " if since is not None else ""
            statement = text(
                f"SELECT {selected} FROM `{self.table}` {where}ORDER BY {order}"  # noqa: S608
            )
            result = connection.execute(statement, {"since": since} if since is not None else {})
            return [dict(row._mapping) for row in result]

    def _check_table(self, connection: Any) -> tuple[str, ...]:
        present = {
            str(name).lower()
            for (name,) in connection.execute(
                text(
                    "SELECT COLUMN_NAME FROM information_schema.COLUMNS "
                    "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :table"
                ),
                {"table": self.table},
            )
        }
        where = f"source {self.source}: CDR database {self.safe_url}"
        if not present:
            raise SourceMisconfigured(
                f"{where}: no table {self.table} (or the account may not read it; "
                "see cdr_table and the GRANT in docs/ingest.md)"
            )
        missing = [column for column in REQUIRED_COLUMNS if column not in present]
        if missing:
            raise SourceMisconfigured(
                f"{where}: table {self.table} lacks the column(s) {', '.join(missing)}; "
                "it is not a FreePBX/Asterisk cdr table"
            )
        return (*REQUIRED_COLUMNS, *(c for c in OPTIONAL_COLUMNS if c in present))

    def _engine_now(self) -> Engine:
        if self._engine is None:
            timeout = max(1, round(self.timeout_s))
            # One connection per pass, closed after it: nothing stale to find after an
            # outage, nothing open that a forked worker process could share.
            self._engine = create_engine(
                self.url,
                poolclass=NullPool,
                connect_args={
                    "connect_timeout": timeout,
                    "read_timeout": timeout,
                    "write_timeout": timeout,
                    "charset": "utf8mb4",
                },
            )
        return self._engine

    def _forget_engine(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        self._columns = None

    def _translate(self, exc: DBAPIError) -> SourceUnavailable | SourceMisconfigured:
        code, message = _driver_error(exc)
        where = f"source {self.source}: CDR database {self.safe_url}"
        if code in _PERMANENT:
            return SourceMisconfigured(f"{where}: {_PERMANENT[code]}: {message}")
        return SourceUnavailable(f"{where}: {message}")


def _select_expression(column: str) -> str:
    if column == "calldate":
        return "CAST(calldate AS CHAR) AS calldate"
    if column in _NUMERIC:
        return f"`{column}`"
    # UTF-8 as the column's character set says (a Latin-1 table's bytes are Latin-1), then
    # bytes: the driver would fail on a byte that is not UTF-8, the decoding here does not.
    return f"CAST(CONVERT(`{column}` USING utf8mb4) AS BINARY) AS `{column}`"


def _text_fields(row: Mapping[str, Any]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for column, value in row.items():
        if value is None:
            fields[column] = ""
        elif isinstance(value, bytes | bytearray):
            fields[column] = bytes(value).decode("utf-8", errors="replace")
        else:
            fields[column] = str(value)
    return fields


def _ref(fields: Mapping[str, str]) -> str:
    """A row's name in messages: its uniqueid and sequence, else its calldate."""
    uniqueid = fields.get("uniqueid", "").strip() or f"@{fields.get('calldate', '')}"
    sequence = fields.get("sequence", "")
    return f"{uniqueid}#{sequence}" if sequence else uniqueid


def _plausible(calldate: str) -> bool:
    try:
        dt.datetime.strptime(calldate, _TIME_FORMAT)
    except ValueError:
        return False
    return True


def _driver_error(exc: DBAPIError) -> tuple[int | None, str]:
    """The server's error number and its first line (never a statement or parameters)."""
    orig = exc.orig
    args: Sequence[Any] = getattr(orig, "args", ()) or ()
    if len(args) >= 2 and isinstance(args[0], int):
        message = str(args[1]).strip().splitlines()[0] if str(args[1]).strip() else ""
        return args[0], f"{message} (error {args[0]})" if message else f"error {args[0]}"
    text_ = str(orig).strip()
    return None, text_.splitlines()[0] if text_ else type(orig).__name__
