"""Reconciling the training library: clip objects and ``qa_clips`` rows agree again.

``recarchive reconcile`` runs this after the recordings' reconciliation
(:mod:`recarchive.retention.reconcile`, which looks only under
``recordings/``). Under ``clips/``:

- an object with no ``qa_clips`` row is an orphan: a clip stored whose row
  never committed (a crash between the two), or one whose row was deleted
  and whose object delete failed. Orphans last modified at or before
  ``now - orphan_min_age`` are deleted only when asked (``delete_orphans``
  and not ``dry_run``), each looked at again just before (still no row);
  younger ones may be a cut at work and are only counted. A clip's audio
  is personal data of the call's agent (and of its caller unless the clip is
  agent-only): an orphan has no row to expire it, so this is the only way it
  goes;
- a row whose object is gone (confirmed by a HEAD request) is reported as a
  lost clip, needing attention; the row is left for a trainer to see.

The library is small next to the archive (clips are cut by hand), so the
listed keys are held in memory. Audited: ``qa.clip.reconcile`` with the
counts and ``qa.clip.reconcile_delete`` with the deleted keys (a clip's key
names only its id and date).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

from sqlalchemy import select

from recarchive.access.audit import append_event
from recarchive.catalogue.database import transaction, utcnow
from recarchive.errors import ObjectNotFound
from recarchive.qa.clip_audio import CLIPS_PREFIX
from recarchive.qa.models import Clip
from recarchive.runtime import Runtime

__all__ = ["ClipReconcileReport", "reconcile_clips"]

logger = logging.getLogger(__name__)

ACTOR = "reconcile"
#: Most keys or ids the report lists per finding (the counts are complete).
SAMPLE = 100


@dataclasses.dataclass
class ClipReconcileReport:
    checked_objects: int = 0
    checked_rows: int = 0
    orphans: int = 0
    young_orphans: int = 0
    orphans_deleted: int = 0
    #: Rows whose object is gone.
    missing: int = 0
    delete_failed: int = 0
    orphan_keys: list[str] = dataclasses.field(default_factory=list)
    missing_ids: list[str] = dataclasses.field(default_factory=list)

    @property
    def needs_attention(self) -> bool:
        return bool(self.missing or self.delete_failed)


def reconcile_clips(
    runtime: Runtime,
    *,
    now: dt.datetime | None = None,
    orphan_min_age: dt.timedelta = dt.timedelta(days=1),
    delete_orphans: bool = False,
    dry_run: bool = False,
) -> ClipReconcileReport:
    """Settle what ``clips/`` in the store and ``qa_clips`` disagree on (module docstring)."""
    report = ClipReconcileReport()
    young_after = (now or utcnow()) - orphan_min_age
    listed: dict[str, dt.datetime] = {}
    for info in runtime.store.list(CLIPS_PREFIX):
        listed[info.key] = info.last_modified
    report.checked_objects = len(listed)
    with runtime.sessions() as session:
        rows = session.execute(select(Clip.id, Clip.object_key)).all()
    report.checked_rows = len(rows)
    known = {key for _, key in rows}
    old_orphans: list[str] = []
    for key, modified in sorted(listed.items()):
        if key in known:
            continue
        if modified > young_after:
            report.young_orphans += 1
            continue
        report.orphans += 1
        old_orphans.append(key)
        if len(report.orphan_keys) < SAMPLE:
            report.orphan_keys.append(key)
    for clip_id, key in rows:
        if key not in listed and not _exists(runtime, key):
            report.missing += 1
            if len(report.missing_ids) < SAMPLE:
                report.missing_ids.append(str(clip_id))
            logger.warning("clip_object_missing", extra={"clip_id": clip_id})
    if delete_orphans and not dry_run:
        _delete_orphans(runtime, old_orphans, report)
    if not dry_run:
        with transaction(runtime.sessions) as session:
            details = {
                name: getattr(report, name)
                for name in (
                    "checked_objects", "checked_rows", "orphans", "young_orphans",
                    "orphans_deleted", "missing", "delete_failed",
                )
            }  # fmt: skip
            append_event(session, actor=ACTOR, action="qa.clip.reconcile", details=details)
    return report


def _exists(runtime: Runtime, key: str) -> bool:
    try:
        runtime.store.head(key)
    except ObjectNotFound:
        return False
    return True


def _delete_orphans(runtime: Runtime, orphans: list[str], report: ClipReconcileReport) -> None:
    """Delete the orphans that still have no row (a cut may have committed since the listing)."""
    if not orphans:
        return
    now_known: set[str] = set()
    with runtime.sessions() as session:
        for start in range(0, len(orphans), 500):
            part = orphans[start : start + 500]
            now_known.update(
                session.scalars(select(Clip.object_key).where(Clip.object_key.in_(part)))
            )
    still = [key for key in orphans if key not in now_known]
    if not still:
        return
    result = runtime.store.delete_many(still)
    report.orphans_deleted += len(result.deleted)
    report.delete_failed += len(result.failed)
    for key, reason in result.failed.items():
        logger.warning("clip_orphan_delete_failed", extra={"object_key": key, "error": reason})
    if result.deleted:
        with transaction(runtime.sessions) as session:
            append_event(
                session,
                actor=ACTOR,
                action="qa.clip.reconcile_delete",
                details={"orphans": list(result.deleted)},
            )
