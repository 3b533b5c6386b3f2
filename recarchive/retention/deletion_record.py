"""Deletions recorded outside the catalogue, so that a restored catalogue backup forgets them not.

Every recording deleted (expiry, erasure, the bucket's lifecycle rule found
by reconciliation) is recorded, before its tombstone is committed, next to
the audit anchors (:func:`~recarchive.storage.services.open_deletion_sink`:
an Object Lock bucket on S3, an append-only file otherwise): one JSON line
per batch, ``{"v": 1, "at": ..., "deleted": [{"id": ..., "rule": ...}]}``,
ids and rules only, no personal data.

A catalogue restored from a backup taken before some of those deletions
still has their rows and, for encrypted recordings, their wrapped data keys:
with a copy of the bucket from the same time, the calls would play again.
:func:`pending_deletions` finds such rows, and :func:`replay_deletions`
(``recarchive restore-check``, also run by ``recarchive init``) deletes
them again, irreversibly: object, data key and row, each leaving a tombstone
under its recorded rule, deleted by ``restore-check``. ``recarchive serve``
refuses to start while any is pending.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from collections.abc import Iterable

from sqlalchemy import delete, select

from recarchive.access.audit import append_event
from recarchive.catalogue.database import transaction, utcnow
from recarchive.catalogue.models import Recording
from recarchive.catalogue.restrictions import forget_numbers
from recarchive.errors import BucketNotFound, ConflictError
from recarchive.retention.rules import Buried, bury
from recarchive.runtime import Runtime

__all__ = [
    "DeletionsNotReplayed",
    "ReplayReport",
    "check_deletions_replayed",
    "pending_deletions",
    "record_deletions",
    "replay_deletions",
]

logger = logging.getLogger(__name__)

ACTOR = "restore-check"


class DeletionsNotReplayed(ConflictError):
    """The catalogue holds recordings deleted since its backup: run `recarchive restore-check`."""


@dataclasses.dataclass
class ReplayReport:
    """What :func:`replay_deletions` found in the record and deleted again."""

    recorded: int = 0
    replayed: list[str] = dataclasses.field(default_factory=list)
    failed: dict[str, str] = dataclasses.field(default_factory=dict)


def record_deletions(runtime: Runtime, deleted: Iterable[Buried]) -> None:
    """Record these deletions outside the catalogue; call before committing their tombstones.

    Raises :class:`~recarchive.errors.StoreError` when the record cannot be
    written: the caller leaves the deletions unsettled for the next run. A
    missing anchor bucket (S3, before ``recarchive init`` made it) is logged
    as an error (``deletion_not_recorded``) and does not stop the deletion.
    """
    items = [{"id": str(item.recording_id), "rule": item.rule} for item in deleted]
    if not items:
        return
    now = utcnow()
    line = json.dumps({"v": 1, "at": now.isoformat(), "deleted": items}, sort_keys=True)
    name = f"{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}.json"
    try:
        runtime.deletion_record.append(name, line.encode())
    except BucketNotFound:
        # No anchor bucket: `recarchive init` has not made it (nor the audit anchors'
        # home). The deletion goes on; this one is not replayable after a restore.
        logger.error(
            "deletion_not_recorded",
            extra={"where": runtime.deletion_record.where, "recordings": len(items)},
        )


def _recorded(runtime: Runtime) -> dict[uuid.UUID, str]:
    """Every recording id in the record, with the rule it was deleted under."""
    found: dict[uuid.UUID, str] = {}
    try:
        entries = runtime.deletion_record.read_all()
    except BucketNotFound:  # no anchor bucket yet (before `init`): nothing was recorded there
        logger.warning("deletion_record_missing", extra={"where": runtime.deletion_record.where})
        return found
    for raw in entries:
        entry = json.loads(raw)
        for item in entry.get("deleted", []):
            found[uuid.UUID(item["id"])] = str(item["rule"])
    return found


def pending_deletions(runtime: Runtime) -> dict[uuid.UUID, str]:
    """Recordings the record says were deleted whose rows the catalogue still has (and rules)."""
    recorded = _recorded(runtime)
    if not recorded:
        return {}
    ids = list(recorded)
    alive: set[uuid.UUID] = set()
    with runtime.sessions() as session:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            alive.update(session.scalars(select(Recording.id).where(Recording.id.in_(chunk))))
    return {recording_id: recorded[recording_id] for recording_id in alive}


def check_deletions_replayed(runtime: Runtime) -> None:
    """Raise :class:`DeletionsNotReplayed` while a recorded deletion is not in the catalogue."""
    pending = pending_deletions(runtime)
    if pending:
        raise DeletionsNotReplayed(
            f"the catalogue holds {len(pending)} recording(s) deleted since it was backed up "
            "(restored from a backup?): run `recarchive restore-check` before serving"
        )


def replay_deletions(runtime: Runtime) -> ReplayReport:
    """Delete again, irreversibly, every recording the record says was deleted.

    For each: the object is deleted from the store (absent counts as
    deleted), then, in one transaction, its tombstone is written under the
    recorded rule (deleted by ``restore-check``), its data key destroyed and
    its row deleted. An object the store keeps is reported in ``failed``
    and tried again on the next run.
    """
    report = ReplayReport(recorded=len(_recorded(runtime)))
    pending = pending_deletions(runtime)
    if not pending:
        return report
    with runtime.sessions() as session:
        rows = list(session.scalars(select(Recording).where(Recording.id.in_(list(pending)))))
        batch = [Buried.of(row, pending[row.id]) for row in rows]
    result = runtime.store.delete_many([item.object_key for item in batch])
    gone = [item for item in batch if item.object_key in set(result.deleted)]
    report.failed = {
        str(item.recording_id): result.failed[item.object_key]
        for item in batch
        if item.object_key in result.failed
    }
    digest_key = runtime.settings.secret("identity_hash_key") or ""
    now = utcnow()
    with transaction(runtime.sessions) as session:
        for item in gone:
            bury(session, item, deleted_by=ACTOR, digest_key=digest_key, now=now)
            append_event(
                session,
                actor=ACTOR,
                action="delete",
                recording_id=item.recording_id,
                details={"rule": item.rule, "replayed": True},
            )
        ids = [item.recording_id for item in gone]
        session.execute(delete(Recording).where(Recording.id.in_(ids)))
        forget_numbers(session)
    report.replayed = [str(item.recording_id) for item in gone]
    logger.warning(
        "deletions_replayed", extra={"replayed": len(report.replayed), "failed": len(report.failed)}
    )
    return report
