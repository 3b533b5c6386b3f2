"""Reconciliation: make the catalogue and the object store agree again.

:func:`reconcile_store` compares every object under ``recordings/`` with the
catalogue and settles what the two disagree on:

- A recording whose object is gone (confirmed by a HEAD request first)
  becomes a tombstone and its catalogue row is deleted, irreversibly: the
  data it described is gone already. The rule says what happened:
  ``bucket-lifecycle`` when it was past ``retain_until`` (the bucket's
  backstop did its job); ``missing-object`` when it was not (a recording lost
  before its time) or when a hold covered it (reported apart as held and
  missing); a row already ``deleting`` is a deletion that a store failure or
  a crash left unsettled and gets the rule its claim was for
  (``retention:<rule>`` for an expiry, ``erasure``), as the run that claimed
  it would have written; one a live run is deleting right now is left to
  that run (counted as in progress). Each tombstone is an audit event
  ``reconcile.tombstone``.
- An object with no row and no tombstone is an orphan (an ingest that stored
  its object but never committed its row); an object with a tombstone was
  deleted once and is back ("resurrected").

Leftovers of writes that never finished (a filesystem store's temporary
files, S3 multipart uploads: partial copies of audio that no key shows) are
deleted irreversibly, unless ``dry_run``, when their last write is older than
``abandoned_after`` (``storage.abandoned_after_hours``, 24 by default), by
:meth:`~recarchive.storage.interfaces.ObjectStore.sweep_abandoned`; they are
counted in the report and in the ``reconcile.run`` audit event.

Deletes objects irreversibly only when asked (``delete_orphans`` and not
``dry_run``): orphans last modified at or before ``now - orphan_min_age``
(one day by default: an ingest stores its object before it commits its row,
so a younger orphan may be an ingest at work) and resurrected objects,
whatever their age. Just before deleting, each orphan is looked at again
(still no row, still old). The deleted keys are recorded in the audit log
(``reconcile.delete``). With ``dry_run`` nothing changes anywhere.

Memory stays flat for millions of objects: the listing streams in key order
in batches of :data:`BATCH` keys, each batch is compared with the catalogue by
IN queries and written to a temporary table on one connection of our own;
rows without an object are then found by an anti-join against that table, a
page of :data:`BATCH` rows at a time. (A merge of the two sorted streams would
need the catalogue to sort keys byte-wise, which a PostgreSQL collation
does not promise; equality joins do not care.)
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from sqlalchemy import (
    Column,
    Connection,
    MetaData,
    String,
    Table,
    delete,
    exists,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.orm import Session

from recarchive.access.audit import append_event
from recarchive.catalogue.database import lock_for_write, transaction, truncate_journal, utcnow
from recarchive.catalogue.models import Recording, RecordingStatus
from recarchive.errors import ObjectNotFound
from recarchive.parts import Archive
from recarchive.private_files import sweep_stale_files
from recarchive.retention.claims import claim_rule, in_progress, stale_after
from recarchive.retention.deletion_record import record_deletions
from recarchive.retention.models import Tombstone
from recarchive.retention.rules import Buried, bury, forget_numbers, held_recording_ids
from recarchive.runtime import Runtime
from recarchive.storage.interfaces import ObjectInfo, ObjectStore

logger = logging.getLogger(__name__)

#: Keys per listing batch and rows per catalogue page.
BATCH = 1000
#: Most keys or ids the report lists per finding (the counts are complete).
SAMPLE = 100
PREFIX = "recordings/"
ACTOR = "reconcile"
BACKSTOP_RULE = "bucket-lifecycle"
MISSING_RULE = "missing-object"

_T = TypeVar("_T")

#: Keys listed in this run. A temporary table lives on one connection and goes with it.
_LISTED = Table(
    "reconcile_listed",
    MetaData(),
    Column("object_key", String(1024), primary_key=True),
    prefixes=["TEMPORARY"],
)


@dataclasses.dataclass
class ReconcileReport:
    now: dt.datetime
    dry_run: bool
    delete_orphans: bool
    checked_objects: int = 0
    checked_rows: int = 0
    #: Rows past retain_until whose object was gone: the bucket's backstop.
    tombstoned_backstop: int = 0
    #: Rows whose object was gone before retain_until: lost.
    tombstoned_missing: int = 0
    #: Held rows whose object was gone: lost although held.
    held_missing: int = 0
    #: ``deleting`` rows whose object was gone: an interrupted expiry or erasure, finished.
    finished_expiry: int = 0
    #: ``deleting`` rows whose object was gone, left to the live run deleting them.
    deletion_in_progress: int = 0
    #: Objects without row or tombstone, older than the minimum age.
    orphans: int = 0
    young_orphans: int = 0
    orphans_deleted: int = 0
    #: Objects whose recording has a tombstone: deleted once, back again.
    resurrected: int = 0
    resurrected_deleted: int = 0
    delete_failed: int = 0
    #: Leftovers of abandoned writes deleted (found, when dry), and the bytes they held.
    swept: int = 0
    swept_bytes: int = 0
    backstop_ids: list[str] = dataclasses.field(default_factory=list)
    missing_ids: list[str] = dataclasses.field(default_factory=list)
    held_missing_ids: list[str] = dataclasses.field(default_factory=list)
    orphan_keys: list[str] = dataclasses.field(default_factory=list)
    resurrected_keys: list[str] = dataclasses.field(default_factory=list)

    @property
    def needs_attention(self) -> bool:
        """Something was lost, came back, or could not be deleted."""
        return bool(
            self.tombstoned_missing or self.held_missing or self.resurrected or self.delete_failed
        )


def reconcile_store(
    runtime: Runtime,
    *,
    now: dt.datetime | None = None,
    orphan_min_age: dt.timedelta = dt.timedelta(days=1),
    delete_orphans: bool = False,
    dry_run: bool = False,
    abandoned_after: dt.timedelta | None = None,
    on_progress: Callable[[int, int | None], None] | None = None,
) -> ReconcileReport:
    """Settle what store and catalogue disagree on; see the module docstring.

    ``abandoned_after`` defaults to the setting ``storage.abandoned_after_hours``;
    ``on_progress(objects checked, None)`` is called after each batch of the listing.
    """
    report = ReconcileReport(now=now or utcnow(), dry_run=dry_run, delete_orphans=delete_orphans)
    if abandoned_after is None:
        abandoned_after = dt.timedelta(hours=runtime.settings.storage.abandoned_after_hours)
    young_after = report.now - orphan_min_age
    with runtime.engine.connect() as connection:
        try:
            _LISTED.create(connection)
            connection.commit()
            for number, batch in enumerate(_batches(runtime.store.list(PREFIX), BATCH), 1):
                connection.execute(insert(_LISTED), [{"object_key": i.key} for i in batch])
                connection.commit()
                _check_objects(runtime, connection, batch, report, young_after)
                if on_progress is not None:
                    on_progress(report.checked_objects, None)
                if number % 50 == 0:
                    logger.info("reconcile_progress", extra={"objects": report.checked_objects})
            if connection.dialect.name == "postgresql":  # temporary tables are never auto-analysed
                connection.execute(text("ANALYZE reconcile_listed"))
                connection.commit()
            _check_rows(runtime, connection, report)
        except BaseException:
            connection.invalidate()  # closes it, and the temporary table with it
            raise
        _LISTED.drop(connection)
        connection.commit()
    cutoff = report.now - abandoned_after
    swept = runtime.store.sweep_abandoned(cutoff, dry_run=dry_run)
    # The work directory too: temporary audio of downloads, transcodes and exports.
    scratch, scratch_bytes = sweep_stale_files(runtime.settings.work_dir, cutoff, dry_run=dry_run)
    report.swept = swept.count + scratch
    report.swept_bytes = swept.size_bytes + scratch_bytes
    summary = {
        field: getattr(report, field)
        for field in (
            "checked_objects", "checked_rows", "tombstoned_backstop", "tombstoned_missing",
            "held_missing", "finished_expiry", "deletion_in_progress", "orphans",
            "young_orphans", "orphans_deleted",
            "resurrected", "resurrected_deleted", "delete_failed", "swept", "swept_bytes",
        )
    }  # fmt: skip
    if not dry_run:
        with transaction(runtime.sessions) as session:
            append_event(session, actor=ACTOR, action="reconcile.run", details=summary)
    logger.info("reconcile_done", extra={**summary, "dry_run": dry_run})
    return report


def _batches(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    batch: list[_T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _note(sample: list[str], items: Iterable[str]) -> None:
    for item in items:
        if len(sample) >= SAMPLE:
            return
        sample.append(item)


# --- objects without rows ----------------------------------------------------


def _check_objects(
    runtime: Archive,
    connection: Connection,
    batch: list[ObjectInfo],
    report: ReconcileReport,
    young_after: dt.datetime,
) -> None:
    report.checked_objects += len(batch)
    keys = [info.key for info in batch]
    known = set(
        connection.scalars(select(Recording.object_key).where(Recording.object_key.in_(keys)))
    )
    unknown = [info for info in batch if info.key not in known]
    stoned: set[str] = set()
    if unknown:
        stoned = set(
            connection.scalars(
                select(Tombstone.object_key).where(
                    Tombstone.object_key.in_([info.key for info in unknown])
                )
            )
        )
    connection.commit()
    resurrected = [info.key for info in unknown if info.key in stoned]
    old = [i.key for i in unknown if i.key not in stoned and i.last_modified <= young_after]
    report.resurrected += len(resurrected)
    report.orphans += len(old)
    report.young_orphans += len(unknown) - len(resurrected) - len(old)
    _note(report.resurrected_keys, resurrected)
    _note(report.orphan_keys, old)
    for key in resurrected:
        logger.error("reconcile_resurrected_object", extra={"object_key": key})
    if old:
        logger.warning("reconcile_orphans", extra={"count": len(old), "object_key": old[0]})
    if report.delete_orphans and not report.dry_run and (resurrected or old):
        _delete_objects(runtime, resurrected, _still_orphaned(runtime, old, young_after), report)


def _still_orphaned(runtime: Archive, keys: list[str], young_after: dt.datetime) -> list[str]:
    """Keys that are, now, still old and still without a row.

    An ingest retried after a crash stores its object again just before it
    commits the row: a fresh modification time means it may be at work.
    """
    if not keys:
        return []
    old = []
    for key in keys:
        try:
            if runtime.store.head(key).last_modified <= young_after:
                old.append(key)
        except ObjectNotFound:
            continue
    with runtime.sessions() as session:
        rows = set(
            session.scalars(select(Recording.object_key).where(Recording.object_key.in_(old)))
        )
    return [key for key in old if key not in rows]


def _delete_objects(
    runtime: Archive, resurrected: list[str], orphans: list[str], report: ReconcileReport
) -> None:
    if not resurrected and not orphans:
        return
    result = runtime.store.delete_many(resurrected + orphans)
    deleted = set(result.deleted)
    gone_resurrected = [key for key in resurrected if key in deleted]
    gone_orphans = [key for key in orphans if key in deleted]
    report.resurrected_deleted += len(gone_resurrected)
    report.orphans_deleted += len(gone_orphans)
    report.delete_failed += len(result.failed)
    for key, reason in result.failed.items():
        logger.warning("reconcile_delete_failed", extra={"object_key": key, "error": reason})
    if gone_resurrected or gone_orphans:
        with transaction(runtime.sessions) as session:
            append_event(
                session,
                actor=ACTOR,
                action="reconcile.delete",
                details={"orphans": gone_orphans, "resurrected": gone_resurrected},
            )


# --- rows without objects ----------------------------------------------------


def _check_rows(runtime: Runtime, connection: Connection, report: ReconcileReport) -> None:
    report.checked_rows = int(connection.scalar(select(func.count(Recording.id))) or 0)
    listed = exists().where(_LISTED.c.object_key == Recording.object_key)
    after: uuid.UUID | None = None
    while True:
        statement = select(Recording.id, Recording.object_key).where(~listed)
        if after is not None:
            statement = statement.where(Recording.id > after)
        page = connection.execute(statement.order_by(Recording.id).limit(BATCH)).all()
        connection.commit()
        if not page:
            return
        after = page[-1].id
        # Listed or not, a row committed after the listing passed its key has its object.
        gone = {row.id: row.object_key for row in page if _absent(runtime.store, row.object_key)}
        if gone:
            _tombstone(runtime, gone, report)


def _absent(store: ObjectStore, key: str) -> bool:
    try:
        store.head(key)
    except ObjectNotFound:
        return True
    return False


def _tombstone(runtime: Runtime, gone: dict[uuid.UUID, str], report: ReconcileReport) -> None:
    """Rows whose object is confirmed gone become tombstones (counted only, when dry)."""
    opened: contextlib.AbstractContextManager[Session] = (
        runtime.sessions() if report.dry_run else transaction(runtime.sessions)
    )
    digest_key = runtime.settings.secret("identity_hash_key") or ""
    stale = stale_after(runtime.settings.retention)
    with opened as session:
        statement = select(Recording).where(Recording.id.in_(list(gone)))
        if not report.dry_run:
            lock_for_write(session)  # a run settling the same claim waits, then finds it done
            statement = statement.with_for_update()
        rows = session.scalars(statement).all()
        held = held_recording_ids(session, [row.id for row in rows], report.now)
        busy = set(
            session.scalars(
                select(Recording.id).where(
                    Recording.id.in_([row.id for row in rows]), in_progress(utcnow(), stale)
                )
            )
        )
        settled = []
        buried: list[Buried] = []
        for recording in rows:
            if recording.object_key != gone[recording.id]:
                continue
            if recording.id in busy:  # its run buries it
                report.deletion_in_progress += 1
                continue
            outcome, rule = _classify(recording, recording.id in held, report.now)
            _count(report, outcome, recording)
            if report.dry_run:
                continue
            settled.append(recording.id)
            buried.append(Buried.of(recording, rule, request_id=recording.deleting_request_id))
            if not bury(
                session,
                buried[-1],
                deleted_by=ACTOR,
                digest_key=digest_key,
                now=utcnow(),
            ):
                continue
            append_event(
                session,
                actor=ACTOR,
                action="reconcile.tombstone",
                recording_id=recording.id,
                details={
                    "rule": rule,
                    "outcome": outcome,
                    "object_key": recording.object_key,
                    "retain_until": recording.retain_until.isoformat(),
                },
            )
        if settled:
            record_deletions(runtime, buried)  # before the commit: a backup cannot forget them
            session.execute(delete(Recording).where(Recording.id.in_(settled)))
            forget_numbers(session)
    if not report.dry_run and gone:
        truncate_journal(runtime.engine)


def _classify(recording: Recording, held: bool, now: dt.datetime) -> tuple[str, str]:
    if recording.status is RecordingStatus.DELETING:
        return "finished_expiry", claim_rule(recording)
    if held:
        return "held_missing", MISSING_RULE
    if recording.retain_until <= now:
        return "backstop", BACKSTOP_RULE
    return "missing", MISSING_RULE


def _count(report: ReconcileReport, outcome: str, recording: Recording) -> None:
    extra: dict[str, Any] = {"recording_id": str(recording.id), "object_key": recording.object_key}
    if outcome == "finished_expiry":
        report.finished_expiry += 1
        logger.info("reconcile_finished_expiry", extra=extra)
    elif outcome == "backstop":
        report.tombstoned_backstop += 1
        _note(report.backstop_ids, [str(recording.id)])
        logger.info("reconcile_backstop_deleted", extra=extra)
    elif outcome == "held_missing":
        report.held_missing += 1
        _note(report.held_missing_ids, [str(recording.id)])
        logger.error("reconcile_held_object_lost", extra=extra)
    else:
        report.tombstoned_missing += 1
        _note(report.missing_ids, [str(recording.id)])
        logger.error("reconcile_object_lost", extra=extra)
