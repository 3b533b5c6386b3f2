"""Nightly expiry: delete what is due, leave a tombstone, say what was done.

:func:`expire_recordings` deletes, irreversibly, every recording whose
``retain_until`` is at or before the cutoff (``now``) and that no active hold
covers: first its object (in batches of up to 1,000 keys, one DeleteObjects
request each on S3), then its catalogue row, which becomes a tombstone
(recording id, object key, SHA-256, size, retain_until, deleted_at, the
retention rule; no personal data).

Safe to interrupt and to run again: a batch is first marked ``deleting`` in
a transaction that re-checks the holds, so a hold placed at the same moment
either wins (the recording is skipped) or is refused (the recording is
already being deleted); a row becomes a tombstone only after the store
confirmed its object gone; an object the store failed to delete keeps its
row (back to ``active``) and is tried again on the next run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Sequence

from sqlalchemy import ColumnElement, and_, delete, func, select, update
from sqlalchemy.orm import Session

from recarchive.access.audit import append_event
from recarchive.catalogue.database import (
    lock_for_write,
    transaction,
    truncate_journal,
    utcnow,
)
from recarchive.catalogue.models import Recording, RecordingStatus
from recarchive.errors import InvalidInputError, StoreError
from recarchive.retention.rules import Buried, bury, forget_numbers, held_condition
from recarchive.runtime import Runtime
from recarchive.storage.interfaces import DeleteResult

logger = logging.getLogger(__name__)

BATCH = 1000
#: How far ``--now`` may lie ahead of the real clock without ``force``.
_MAX_FUTURE = dt.timedelta(days=1)


class ClockRefused(InvalidInputError):
    """The simulated clock is not plausible; nothing was deleted."""


@dataclasses.dataclass
class ExpiryReport:
    cutoff: dt.datetime
    dry_run: bool
    deleted: int = 0
    bytes_deleted: int = 0
    held_skipped: int = 0
    failed: int = 0
    by_rule: Counter[str] = dataclasses.field(default_factory=Counter)
    failures: dict[str, str] = dataclasses.field(default_factory=dict)


def check_clock(runtime: Runtime, now: dt.datetime, *, force: bool = False) -> None:
    """Refuse a cutoff earlier than the newest recording or more than a day ahead.

    Either would most likely be a mistake in ``--now``; ``force`` accepts it.
    """
    if force:
        return
    real = utcnow()
    if now > real + _MAX_FUTURE:
        raise ClockRefused(
            f"--now {now.isoformat()} is more than a day ahead of the clock "
            f"({real.isoformat()}); use --force to simulate it"
        )
    with runtime.sessions() as session:
        newest = session.scalar(select(Recording.started_at).order_by(Recording.started_at.desc()))
    if newest is not None and now < newest:
        raise ClockRefused(
            f"--now {now.isoformat()} is earlier than the newest recording "
            f"({newest.isoformat()}); use --force to simulate it"
        )


def _due(cutoff: dt.datetime) -> ColumnElement[bool]:
    """Past retention; ``deleting`` ones are left over from an interrupted run."""
    return and_(
        Recording.retain_until <= cutoff,
        Recording.status.in_([RecordingStatus.ACTIVE, RecordingStatus.DELETING]),
    )


def expire_recordings(
    runtime: Runtime, *, now: dt.datetime | None = None, dry_run: bool = False
) -> ExpiryReport:
    """Delete every due, unheld recording; see the module docstring."""
    cutoff = now or utcnow()
    report = ExpiryReport(cutoff=cutoff, dry_run=dry_run)
    with runtime.sessions() as session:
        report.held_skipped = int(
            session.scalar(
                select(func.count(Recording.id)).where(_due(cutoff), held_condition(cutoff))
            )
            or 0
        )
    if dry_run:
        with runtime.sessions() as session:
            rows = session.execute(
                select(Recording.retention_rule, Recording.size_bytes).where(
                    _due(cutoff), ~held_condition(cutoff)
                )
            ).all()
        for rule, size in rows:
            report.deleted += 1
            report.bytes_deleted += size
            report.by_rule[rule] += 1
        return report
    failed_ids: set[uuid.UUID] = set()  # not retried in this run
    while True:
        batch = _claim_batch(runtime, cutoff, failed_ids)
        if not batch:
            break
        gone, failed = delete_doomed(runtime, batch, deleted_by="system")
        for item in gone:
            report.deleted += 1
            report.bytes_deleted += item.size_bytes
            report.by_rule[item.rule.removeprefix("retention:")] += 1
        report.failed += len(failed)
        failed_ids.update(failed)
        report.failures.update({str(rid): reason for rid, reason in failed.items()})
        if failed and not gone:
            break  # the store refuses everything: stop, the rest is retried next run
    logger.info(
        "expiry_done",
        extra={"deleted": report.deleted, "failed": report.failed, "held": report.held_skipped},
    )
    return report


def _claim_batch(runtime: Runtime, cutoff: dt.datetime, skip: set[uuid.UUID]) -> list[Buried]:
    """Mark up to :data:`BATCH` due, unheld recordings ``deleting``; return them."""
    with transaction(runtime.sessions) as session:
        lock_for_write(session)  # holds are checked and the batch marked in one step
        ids = list(
            session.scalars(
                select(Recording.id)
                .where(_due(cutoff), ~held_condition(cutoff), Recording.id.not_in(skip))
                .order_by(Recording.retain_until)
                .limit(BATCH)
                .with_for_update(skip_locked=True)
            )
        )
        if not ids:
            return []
        # Re-checked in this statement (a fresh snapshot): a hold committed meanwhile wins.
        session.execute(
            update(Recording)
            .where(Recording.id.in_(ids), _due(cutoff), ~held_condition(cutoff))
            .values(status=RecordingStatus.DELETING)
            .execution_options(synchronize_session=False)
        )
        return doomed(session, ids, lambda recording: f"retention:{recording.retention_rule}")


def doomed(
    session: Session, ids: Sequence[uuid.UUID], rule: Callable[[Recording], str]
) -> list[Buried]:
    """The recordings among ``ids`` that are marked ``deleting``, with their tombstone rule."""
    rows = session.scalars(
        select(Recording).where(
            Recording.id.in_(list(ids)), Recording.status == RecordingStatus.DELETING
        )
    )
    return [Buried.of(r, rule(r)) for r in rows]


def delete_doomed(
    runtime: Runtime,
    batch: Sequence[Buried],
    *,
    deleted_by: str,
    request_id: uuid.UUID | None = None,
) -> tuple[list[Buried], dict[uuid.UUID, str]]:
    """Delete the objects, then turn the rows whose objects are gone into tombstones.

    Each deletion is an audit entry. A recording whose object the store
    could not delete (or every one, when the store is down) goes back to
    ``active`` and is tried again later. Returns what is gone and what failed, why.
    """
    by_key = {item.object_key: item for item in batch}
    try:
        result = runtime.store.delete_many(list(by_key))
    except StoreError as exc:  # the store is down: every key failed
        result = DeleteResult(deleted=(), failed=dict.fromkeys(by_key, exc.message))
    gone = [by_key[key] for key in result.deleted if key in by_key]
    failed = {by_key[key].recording_id: why for key, why in result.failed.items() if key in by_key}
    now = utcnow()
    digest_key = runtime.settings.secret("identity_hash_key") or ""
    with transaction(runtime.sessions) as session:
        for item in gone:
            buried = bury(
                session,
                item,
                deleted_by=deleted_by,
                digest_key=digest_key,
                now=now,
                request_id=request_id,
            )
            if not buried:
                continue
            details = {"rule": item.rule}
            if request_id is not None:
                details["request_id"] = str(request_id)
            append_event(
                session,
                actor=deleted_by,
                action="delete",
                recording_id=item.recording_id,
                details=details,
            )
        if gone:
            ids = [item.recording_id for item in gone]
            session.execute(delete(Recording).where(Recording.id.in_(ids)))
            forget_numbers(session)
        if failed:
            session.execute(
                update(Recording)
                .where(Recording.id.in_(list(failed)))
                .values(status=RecordingStatus.ACTIVE)
                .execution_options(synchronize_session=False)
            )
    if gone:
        truncate_journal(runtime.engine)
    return gone, failed
