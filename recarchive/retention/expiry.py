"""Nightly expiry: delete what is due, leave a tombstone, say what was done.

:func:`expire_recordings` deletes, irreversibly, every recording whose
``retain_until`` is at or before the cutoff (``now``) and that no active hold
covers: first its object (in batches of up to 1,000 keys, one DeleteObjects
request each on S3), then its catalogue row, which becomes a tombstone
(recording id, object key, SHA-256, size, retain_until, deleted_at, the
retention rule; no personal data).

Safe to interrupt, to run again, and to run from several places at once: a
batch is first claimed (marked ``deleting`` under this run's id, see
``retention/claims.py``) in a transaction that re-checks the holds, so a
hold placed at the same moment either wins (the recording is skipped) or is
refused (the recording is already being deleted), and another run leaves
the batch alone while the claim is live. A row becomes a tombstone only
after the store confirmed its object gone. An object the store answered it
still has goes back to ``active`` and is tried again on the next run; one
whose fate is unknown (the store failed part-way through a batch) stays
``deleting``, never ``active`` without its audio, and the next run settles
it. Each run reports only what it deleted itself.

The next batch is claimed, and its objects deleted by a second thread, while
the catalogue settles the batch before it, so the store is kept busy; a run
that is killed leaves up to two claimed batches, which the next run takes
over once their claims are stale.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from sqlalchemy import ColumnElement, and_, delete, func, select

from recarchive.access.audit import AuditEntry, append_entries
from recarchive.catalogue.database import (
    lock_for_write,
    transaction,
    truncate_journal,
    utcnow,
)
from recarchive.catalogue.models import Recording
from recarchive.errors import InvalidInputError, StoreError
from recarchive.parts import Catalogue, Sessions
from recarchive.retention.claims import (
    RETENTION_PREFIX,
    claim,
    claimable,
    new_run_id,
    owned,
    release,
    retention_rule_sql,
    stale_after,
)
from recarchive.retention.deletion_record import record_deletions
from recarchive.retention.rules import Buried, bury_many, forget_numbers, held_condition
from recarchive.runtime import Runtime
from recarchive.storage.interfaces import ObjectStore

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
    #: Objects the store kept (still there): ``active`` again, tried next run.
    failed: int = 0
    #: Left ``deleting``: the store failed part-way, the next run settles them.
    unsettled: int = 0
    by_rule: Counter[str] = dataclasses.field(default_factory=Counter)
    failures: dict[str, str] = dataclasses.field(default_factory=dict)
    #: How long the run took.
    seconds: float = 0.0


def check_clock(runtime: Sessions, now: dt.datetime, *, force: bool = False) -> None:
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


def _due(cutoff: dt.datetime, now: dt.datetime, stale: dt.timedelta) -> ColumnElement[bool]:
    """Past retention, and no live run is deleting it (see ``retention/claims.py``)."""
    return and_(Recording.retain_until <= cutoff, claimable(now, stale))


def expire_recordings(
    runtime: Runtime,
    *,
    now: dt.datetime | None = None,
    dry_run: bool = False,
    batch_size: int | None = None,
    on_progress: Callable[[int, int | None], None] | None = None,
) -> ExpiryReport:
    """Delete every due, unheld recording; see the module docstring.

    ``batch_size`` (default :data:`BATCH`) recordings are claimed and deleted at a time;
    ``on_progress(handled, total due)`` is called after each batch.
    """
    started = time.monotonic()
    cutoff = now or utcnow()
    stale = stale_after(runtime.settings.retention)
    report = ExpiryReport(cutoff=cutoff, dry_run=dry_run)
    due = _due(cutoff, utcnow(), stale)
    with runtime.sessions() as session:
        report.held_skipped = int(
            session.scalar(select(func.count(Recording.id)).where(due, held_condition(cutoff))) or 0
        )
        if dry_run:
            rows = session.execute(
                select(Recording.retention_rule, Recording.size_bytes).where(
                    due, ~held_condition(cutoff)
                )
            ).all()
            for rule, size in rows:
                report.deleted += 1
                report.bytes_deleted += size
                report.by_rule[rule] += 1
            report.seconds = time.monotonic() - started
            return report
        total = int(
            session.scalar(select(func.count(Recording.id)).where(due, ~held_condition(cutoff)))
            or 0
        )
    run_id = new_run_id()
    done_with: set[uuid.UUID] = set()  # failed or unsettled: not tried again in this run
    size = batch_size or BATCH
    batch = _claim_batch(runtime, cutoff, done_with, run_id, size)
    removed = remove_objects(runtime, batch) if batch else None
    stop = False
    # One thread sends the next batch's DeleteObjects while this one settles in the catalogue.
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="recarchive-expiry") as ahead:
        while batch and removed is not None:
            stop = stop or removed.refused_all
            # Claimed before this batch settles: its own claims keep it out of the next one.
            upcoming = [] if stop else _claim_batch(runtime, cutoff, done_with, run_id, size)
            removing = ahead.submit(remove_objects, runtime, upcoming) if upcoming else None
            settled = settle_deletions(runtime, batch, deleted_by="system", removed=removed)
            _count(report, settled, done_with)
            if on_progress is not None:
                handled = report.deleted + report.failed + report.unsettled
                on_progress(handled, max(total, handled))  # others may expire some meanwhile
            # The store refuses or fails everything: stop (a batch already sent is settled
            # first), the rest waits for the next run.
            stop = stop or bool((settled.failed or settled.unsettled) and not settled.gone)
            batch, removed = upcoming, removing.result() if removing is not None else None
    report.seconds = time.monotonic() - started
    logger.info(
        "expiry_done",
        extra={
            "run_id": run_id,
            "seconds": round(report.seconds, 3),
            "deleted": report.deleted,
            "failed": report.failed,
            "unsettled": report.unsettled,
            "held": report.held_skipped,
        },
    )
    return report


def _count(report: ExpiryReport, settled: Settled, done_with: set[uuid.UUID]) -> None:
    """Add a settled batch to the report; its failed and unsettled are not tried again."""
    for item in settled.gone:
        report.deleted += 1
        report.bytes_deleted += item.size_bytes
        report.by_rule[item.rule.removeprefix(RETENTION_PREFIX)] += 1
    report.failed += len(settled.failed)
    report.unsettled += len(settled.unsettled)
    for outcome in (settled.failed, settled.unsettled):
        done_with.update(outcome)
        report.failures.update({str(rid): reason for rid, reason in outcome.items()})


def _claim_batch(
    runtime: Catalogue, cutoff: dt.datetime, skip: set[uuid.UUID], run_id: str, size: int
) -> list[Buried]:
    """Claim up to ``size`` due, unheld recordings for ``run_id``; return them."""
    stale = stale_after(runtime.settings.retention)
    with transaction(runtime.sessions) as session:
        lock_for_write(session)  # holds are checked and the batch claimed in one step
        now = utcnow()
        ids = list(
            session.scalars(
                select(Recording.id)
                .where(_due(cutoff, now, stale), ~held_condition(cutoff), Recording.id.not_in(skip))
                # In the order of the (retain_until, status) index, which the scan stops
                # in at the limit: a tie-break on id made SQLite sort every row due at
                # the same instant for each batch (0.7 s a batch with 600,000 left).
                .order_by(Recording.retain_until)
                .limit(size)
                .with_for_update(skip_locked=True)
            )
        )
        return claim(
            session,
            ids,
            run_id=run_id,
            rule=retention_rule_sql(),
            held_at=cutoff,
            stale=stale,
            now=now,
        )


@dataclasses.dataclass
class Settled:
    """What became of a claimed batch."""

    #: Deleted by this run: each has its tombstone now.
    gone: list[Buried] = dataclasses.field(default_factory=list)
    #: The store kept the object (it is still there): ``active`` again, with why.
    failed: dict[uuid.UUID, str] = dataclasses.field(default_factory=dict)
    #: Unknown whether the object is gone: left ``deleting`` for the next run, with why.
    unsettled: dict[uuid.UUID, str] = dataclasses.field(default_factory=dict)
    #: Taken over or settled by another run meanwhile: not this run's to count.
    taken: int = 0


def settle_deletions(
    runtime: Runtime,
    batch: Sequence[Buried],
    *,
    deleted_by: str,
    request_id: uuid.UUID | None = None,
    removed: Removed | None = None,
) -> Settled:
    """Delete the claimed recordings' objects, then settle each claim by what the store said.

    ``removed``: what :func:`remove_objects` already did with ``batch``
    (expiry sends a batch's deletes while the one before settles).

    Gone (deleted, or absent when asked after a per-key failure): recorded
    outside the catalogue (``retention/deletion_record.py``; when that fails,
    unknown), then a tombstone under the claim's rule, the data key
    destroyed, the row deleted, an audit entry. Still
    there (asked after a per-key failure): ``active`` again. Unknown (the
    request failed as a whole, or the store could not be asked): left
    ``deleting`` for the next run, which deletes again (an absent object
    counts as deleted). Only claims this run still holds are settled.
    """
    by_key = {item.object_key: item for item in batch}
    if removed is None:
        removed = remove_objects(runtime, batch)
    deleted, kept, unknown = removed.deleted, removed.kept, dict(removed.unknown)
    try:  # outside the catalogue first, so that a restored backup cannot forget them
        record_deletions(runtime, [by_key[key] for key in deleted])
    except StoreError as exc:
        unknown.update(dict.fromkeys(deleted, f"deletion not recorded: {exc.message}"))
        deleted = []
    now = utcnow()
    digest_key = runtime.settings.secret("identity_hash_key") or ""
    settled = Settled()
    with transaction(runtime.sessions) as session:
        lock_for_write(session)
        mine = owned(session, batch)
        settled.taken = len(batch) - len(mine)

        def ours(keys: Iterable[str]) -> list[Buried]:
            return [by_key[key] for key in keys if by_key[key].recording_id in mine]

        buried = bury_many(
            session,
            ours(deleted),
            deleted_by=deleted_by,
            digest_key=digest_key,
            now=now,
        )
        settled.gone.extend(buried)
        settled.taken += len(ours(deleted)) - len(buried)  # buried by another run
        if buried:
            # One entry per deletion, in order, chained under one lock.
            append_entries(session, [_deletion_entry(i, deleted_by, request_id) for i in buried])
        if ours(deleted):
            session.execute(
                delete(Recording).where(Recording.id.in_([i.recording_id for i in ours(deleted)]))
            )
            forget_numbers(session)
        settled.failed = {item.recording_id: kept[item.object_key] for item in ours(kept)}
        settled.unsettled = {item.recording_id: unknown[item.object_key] for item in ours(unknown)}
        release(session, list(settled.failed), settled=True)
        release(session, list(settled.unsettled), settled=False)
    if settled.gone:
        truncate_journal(runtime.engine)
    for recording_id, reason in settled.unsettled.items():
        logger.warning(
            "deletion_unsettled", extra={"recording_id": str(recording_id), "error": reason}
        )
    return settled


@dataclasses.dataclass
class Removed:
    """What the store said about a batch's objects, by key."""

    #: Gone.
    deleted: list[str]
    #: Still there, with why.
    kept: dict[str, str]
    #: Unknown whether gone, with why.
    unknown: dict[str, str]

    @property
    def refused_all(self) -> bool:
        return not self.deleted and bool(self.kept or self.unknown)


def remove_objects(runtime: Runtime, batch: Sequence[Buried]) -> Removed:
    """Delete the claimed recordings' objects: what the store said of each.

    :func:`settle_deletions` records those gone outside the catalogue before
    their tombstones are written.
    """
    deleted, kept, unknown = _delete_objects(runtime.store, [item.object_key for item in batch])
    return Removed(deleted, kept, unknown)


def _delete_objects(
    store: ObjectStore, keys: list[str]
) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """Delete ``keys``: which are gone, which the store kept, which are unknown (with why).

    A request that fails as a whole may have deleted part of the batch (a
    server dying mid-way): every key is unknown. A key that failed alone is
    looked at: absent is gone, present is kept, and unknown if the store
    cannot say.
    """
    try:
        result = store.delete_many(keys)
    except StoreError as exc:
        return [], {}, dict.fromkeys(keys, exc.message)
    wanted = set(keys)
    deleted = [key for key in result.deleted if key in wanted]
    kept: dict[str, str] = {}
    unknown: dict[str, str] = {}
    for key, why in result.failed.items():
        if key not in wanted:
            continue
        try:
            present = store.exists(key)
        except StoreError as exc:
            unknown[key] = f"{why}; then {exc.message}"
            continue
        if present:
            kept[key] = why
        else:
            deleted.append(key)
    return deleted, kept, unknown


def _deletion_entry(item: Buried, deleted_by: str, request_id: uuid.UUID | None) -> AuditEntry:
    details = {"rule": item.rule}
    request = item.request_id or request_id
    if request is not None:
        details["request_id"] = str(request)
    return AuditEntry(
        actor=deleted_by, action="delete", recording_id=item.recording_id, details=details
    )


def delete_doomed(
    runtime: Runtime,
    batch: Sequence[Buried],
    *,
    deleted_by: str,
    request_id: uuid.UUID | None = None,
) -> tuple[list[Buried], dict[uuid.UUID, str]]:
    """:func:`settle_deletions`, for erasure: what is gone, and what is not (yet), why.

    Not gone: the store kept the object (``active`` again), or it is unknown
    (left ``deleting`` for the next run). Both are tried again later.
    """
    settled = settle_deletions(runtime, batch, deleted_by=deleted_by, request_id=request_id)
    return settled.gone, {**settled.failed, **settled.unsettled}
