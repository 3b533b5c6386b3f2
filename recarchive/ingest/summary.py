"""What an ingest pass did: counts shown at the end of a run and logged."""

from __future__ import annotations

import collections
import dataclasses
import logging
from typing import Any

from recarchive.catalogue.intake import WorkItem

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class IngestSummary:
    """What a pass (or a whole run) did; shown at the end and logged."""

    discovered: int = 0
    archived: int = 0
    duplicates: int = 0
    deferred: int = 0
    #: Files at a source left alone by a configured rule (a spool's ``ignore``).
    ignored: int = 0
    #: Recordings at a source left for a later pass while they wait for their CDR
    #: row or contact record (a spool's ``cdr_wait_s``, a drop's ``record_wait_s``).
    awaiting_cdr: int = 0
    #: Recordings archived with what their name tells (a spool file's name, a drop
    #: object's key) because their CDR row or contact record did not come in time.
    archived_without_record: int = 0
    #: Split legs (MixMonitor's ``-in``/``-out`` files) left for a later pass while
    #: they wait for their other leg (a spool's ``legs_wait_s``).
    awaiting_leg: int = 0
    #: Split legs archived alone, mono, their other leg never having come.
    lone_legs: int = 0
    #: Recordings archived from their name that a late CDR row or contact record enriched.
    enriched: int = 0
    retried: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    quarantined: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    #: Sources that could not be read this pass, with the reason.
    unreadable_sources: dict[str, str] = dataclasses.field(default_factory=dict)
    #: Items still queued at the end of the run (in backoff, deferred, claimed
    #: elsewhere); None when the catalogue could not be asked.
    waiting: int | None = 0
    #: Passes that ended early because the catalogue or the store failed, and the last reason.
    paused: int = 0
    last_error: str | None = None

    def merge(self, other: IngestSummary) -> None:
        for field in (
            "discovered",
            "archived",
            "duplicates",
            "deferred",
            "ignored",
            "awaiting_cdr",
            "archived_without_record",
            "awaiting_leg",
            "lone_legs",
            "enriched",
            "retried",
            "paused",
        ):
            setattr(self, field, getattr(self, field) + getattr(other, field))
        self.bytes_in += other.bytes_in
        self.bytes_out += other.bytes_out
        self.quarantined.update(other.quarantined)
        self.unreadable_sources.update(other.unreadable_sources)
        self.last_error = other.last_error or self.last_error

    def as_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["quarantined"] = dict(sorted(self.quarantined.items()))
        return values


def count_outcome(summary: IngestSummary, outcome: str, item: WorkItem) -> None:
    if outcome == "archived":
        summary.archived += 1
        lone = (item.payload.get("locator") or {}).get("lone_leg")
        if lone is not None:
            summary.lone_legs += 1
            # The role only: the file's name holds phone numbers.
            logger.warning("lone_leg_archived", extra={"work_item_id": str(item.id), "leg": lone})
        summary.bytes_in += int(item.payload.get("bytes_in", 0))
        summary.bytes_out += int(item.payload.get("bytes_out", 0))
        if (item.payload.get("facts") or {}).get("from_name"):
            summary.archived_without_record += 1
    elif outcome == "duplicate":
        summary.duplicates += 1
    elif outcome == "deferred":
        summary.deferred += 1
    elif outcome == "retry":
        summary.retried += 1
    elif outcome.startswith("quarantined:"):
        summary.quarantined[outcome.partition(":")[2]] += 1
