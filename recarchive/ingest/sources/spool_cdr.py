"""The spool's CDR as read so far: its calls by uniqueid and by recording file name,
and the lines that are wrong.

Every row is kept with its legs (:class:`recarchive.ingest.cdr_legs.CdrLegs`):
a uniqueid stands for its leg that talked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from recarchive.ingest.cdr import CdrLineError, CdrRecord
from recarchive.ingest.cdr_legs import CdrLegs
from recarchive.ingest.interfaces import Problem


@dataclasses.dataclass(frozen=True)
class CdrRead:
    """The CDR as known after this pass's read, and the uniqueids of the rows it read."""

    by_uniqueid: dict[str, CdrRecord]
    by_file: dict[str, CdrRecord]
    problems: list[Problem]
    fresh: list[str]
    legs: CdrLegs

    @classmethod
    def of(cls, state: CdrState, fresh: list[str]) -> CdrRead:
        return cls(state.by_uniqueid, state.by_file, list(state.problems), fresh, state.legs)

    def for_file(self, name: str) -> CdrRecord | None:
        """The call whose FreePBX ``recordingfile`` is ``name``: its leg that talked."""
        record = self.by_file.get(name)
        return None if record is None else self.by_uniqueid.get(record.uniqueid, record)


def uniqueids(entries: Sequence[CdrRecord | CdrLineError]) -> list[str]:
    """The uniqueids of the records among ``entries`` (lines without one left out)."""
    return [entry.uniqueid for entry in entries if isinstance(entry, CdrRecord) and entry.uniqueid]


class CdrState:
    """CDR records by uniqueid and by recording file name, and the lines that are wrong."""

    def __init__(self) -> None:
        self.legs = CdrLegs()
        self.by_file: dict[str, CdrRecord] = {}
        self.problems: list[Problem] = []

    @property
    def by_uniqueid(self) -> dict[str, CdrRecord]:
        return self.legs.by_uniqueid

    def add(self, entry: CdrRecord | CdrLineError, cdr_name: str, kept_at: str) -> None:
        """Take one record or error of the CDR named ``cdr_name`` (``Master.csv``,
        ``asteriskcdrdb.cdr``), kept at ``kept_at`` (its path, or the database's name)."""
        place = entry.ref or str(entry.line)
        where = f"{cdr_name} row {entry.ref}" if entry.ref else f"{cdr_name} line {entry.line}"
        if isinstance(entry, CdrLineError):
            self.problems.append(
                Problem(
                    f"cdr:{cdr_name}:{place}",
                    "malformed_cdr",
                    f"{where}: {entry.reason}",
                    kept_at=f"{kept_at}:{place}",
                )
            )
            return
        if entry.recordingfile:
            if not _plain_file_name(entry.recordingfile):
                self.problems.append(
                    Problem(
                        f"cdr:{cdr_name}:{place}",
                        "invalid_name",
                        f"{where}: recordingfile is not a plain file "
                        "name (path separators, '..' or an absolute path)",
                        kept_at=f"{kept_at}:{place}",
                    )
                )
                return
            _keep_answered(self.by_file, entry.recordingfile, entry)
        # A call has a line per dial leg (and transfer): the legs pick the one that talked.
        self.legs.add(entry)


def _keep_answered(records: dict[str, CdrRecord], key: str, entry: CdrRecord) -> None:
    """The first record under ``key``, unless a later one was answered and it was not."""
    current = records.get(key)
    if current is None or (entry.answered and not current.answered):
        records[key] = entry


def _plain_file_name(name: str) -> bool:
    return (
        bool(name)
        and "/" not in name
        and "\\" not in name
        and name not in (".", "..")
        and "\x00" not in name
        and not name.startswith(".")
    )
