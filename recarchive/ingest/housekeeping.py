"""Ingest housekeeping: what ingest leaves behind gets an end.

:func:`housekeep_ingest` deletes, irreversibly:

- in the ``done_dir`` of every spool source with ``after_archive = "move"``:
  files moved more than ``done_keep_days`` ago, and at once the files of
  calls that were erased or expired (see
  :mod:`recarchive.ingest.sources.done_dir`);
- quarantine entries resolved more than ``ingest.quarantine_keep_days``
  ago, and unresolved ones created more than ``ingest.quarantine_max_days``
  ago (their originals stay at the source: see docs/ingest.md).

It reports counts, never file names or references (they carry numbers).
Called by ``recarchive ingest`` (after each ``--once`` run; hourly and after
each nightly run when it runs continuously), by ``recarchive scheduler``,
and right after an erasure, so that the erased calls' copies go at once.
Several processes may run it at the same time: each deletion is idempotent.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from recarchive.catalogue.database import transaction, utcnow
from recarchive.catalogue.intake import QuarantineEntry, WorkItem, forgotten_ref
from recarchive.config import IngestSettings, Settings, SpoolSourceSettings
from recarchive.errors import RecArchiveError
from recarchive.ingest.sources.done_dir import DoneDirSweep, ForgottenRefs
from recarchive.ingest.sources.spool import SpoolSource
from recarchive.parts import Sessions
from recarchive.runtime import Runtime

logger = logging.getLogger(__name__)

#: Seconds between two housekeeping runs of a long-running process.
HOUSEKEEPING_INTERVAL_S = 3600.0


@dataclasses.dataclass
class HousekeepingReport:
    """What one housekeeping run deleted (counts only)."""

    done: DoneDirSweep = dataclasses.field(default_factory=DoneDirSweep)
    #: Quarantine entries deleted ``quarantine_keep_days`` after they were resolved.
    quarantine_resolved: int = 0
    #: Unresolved quarantine entries deleted ``quarantine_max_days`` after they were made.
    quarantine_expired: int = 0
    #: Spool sources whose done_dir could not be swept, with the reason.
    unswept: dict[str, str] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "done_aged": self.done.aged,
            "done_forgotten": self.done.forgotten,
            "done_kept": self.done.kept,
            "done_skipped": self.done.skipped,
            "done_failed": self.done.failed,
            "quarantine_resolved": self.quarantine_resolved,
            "quarantine_expired": self.quarantine_expired,
            "unswept": sorted(self.unswept),
        }


def housekeep_ingest(runtime: Runtime, *, now: dt.datetime | None = None) -> HousekeepingReport:
    """Delete done_dir copies and quarantine entries that are due (see the module docstring).

    A done_dir that cannot be read is reported in ``unswept`` and logged;
    catalogue failures raise (:class:`~recarchive.errors.CatalogueError`),
    as does a missing identity-hash key (:class:`~recarchive.errors.SecretMissing`).
    """
    now = now or utcnow()
    report = HousekeepingReport()
    movers = move_sources(runtime.settings)
    if movers:
        key = runtime.settings.secret("identity_hash_key") or ""
        for source in movers:
            try:
                report.done.merge(source.sweep_done(now, _forgotten_lookup(runtime, source, key)))
            except (OSError, RecArchiveError) as exc:
                reason = getattr(exc, "message", None) or type(exc).__name__
                report.unswept[source.name] = reason
                logger.error("done_dir_unswept", extra={"source": source.name, "error": reason})
    report.quarantine_resolved, report.quarantine_expired = purge_quarantine(
        runtime.sessions, runtime.settings.ingest, now
    )
    logger.info("ingest_housekeeping", extra=report.as_dict())
    return report


def housekeep_safely(
    runtime: Runtime, *, now: dt.datetime | None = None
) -> HousekeepingReport | None:
    """:func:`housekeep_ingest`, with a failure logged instead of raised (None then).

    For callers whose own work is done and must not fail because of it: an
    erasure, a pass of a long-running ingest. The next run tries again.
    """
    try:
        return housekeep_ingest(runtime, now=now)
    except RecArchiveError as exc:
        logger.error("ingest_housekeeping_failed", extra={"error": exc.message})
        return None


def move_sources(settings: Settings) -> list[SpoolSource]:
    """The spool sources that move archived files to a done_dir."""
    return [
        SpoolSource(config, timezone=settings.general.timezone, settle_s=settings.ingest.settle_s)
        for config in settings.sources
        if isinstance(config, SpoolSourceSettings)
        and config.after_archive == "move"
        and config.done_dir is not None
    ]


def _forgotten_lookup(runtime: Sessions, source: SpoolSource, key: str) -> ForgottenRefs:
    def forgotten(refs: Sequence[str]) -> Collection[str]:
        return forgotten_refs(runtime.sessions, source.name, refs, key=key)

    return forgotten


def forgotten_refs(
    sessions: sessionmaker[Session], source: str, refs: Sequence[str], *, key: str
) -> set[str]:
    """Which of ``refs`` belong to work items whose call was deleted (erased or expired).

    Such a work item keeps only :func:`~recarchive.catalogue.intake.forgotten_ref`
    of its reference: the digest of each candidate is looked up.
    """
    by_digest = {forgotten_ref(key, source, ref): ref for ref in refs}
    if not by_digest:
        return set()
    with sessions() as session:
        found = session.scalars(
            select(WorkItem.source_ref).where(
                WorkItem.source == source, WorkItem.source_ref.in_(list(by_digest))
            )
        )
        return {by_digest[digest] for digest in found}


def purge_quarantine(
    sessions: sessionmaker[Session], settings: IngestSettings, now: dt.datetime
) -> tuple[int, int]:
    """Delete, irreversibly, quarantine entries past their time; return (resolved, unresolved).

    Resolved entries go ``quarantine_keep_days`` after ``resolved_at``;
    unresolved ones ``quarantine_max_days`` after ``created_at``. The work
    items they point to are kept (a quarantined one stops the same original
    from being taken and quarantined again).
    """
    resolved_before = now - dt.timedelta(days=settings.quarantine_keep_days)
    made_before = now - dt.timedelta(days=settings.quarantine_max_days)
    with transaction(sessions) as session:
        resolved = session.execute(
            delete(QuarantineEntry)
            .where(
                QuarantineEntry.resolved_at.is_not(None),
                QuarantineEntry.resolved_at < resolved_before,
            )
            .execution_options(synchronize_session=False)
        )
        expired = session.execute(
            delete(QuarantineEntry)
            .where(QuarantineEntry.resolved_at.is_(None), QuarantineEntry.created_at < made_before)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(resolved, "rowcount", 0)), int(getattr(expired, "rowcount", 0))


class HousekeepingClock:
    """When a long-running process housekeeps: at its first chance, then hourly.

    ``clock`` is monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        interval_s: float = HOUSEKEEPING_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self.last: float | None = None

    def due(self) -> bool:
        return self.last is None or self.clock() - self.last >= self.interval_s

    def done(self) -> None:
        self.last = self.clock()
