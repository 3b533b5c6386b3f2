"""The retention rules that several parts of recarchive need, each defined once.

- When a hold is in force and which recordings it covers
  (:func:`hold_in_force`, :func:`held_condition`, :func:`held_recording_ids`,
  :func:`customers_held`, :func:`holds_covering`). A hold on a customer covers
  their recordings and the calls from a number they share with others (where
  they are one of the candidates): a hold keeps, so the safe side is to keep.
- The retention tag an object should carry (:func:`expected_tag`) and
  setting it (:func:`retag`).
- What a deletion leaves and what it takes with it (:func:`bury`): a
  tombstone without personal data, and the call's intake records scrubbed
  down to keyed digests in the same transaction; restrictions on a number no
  recording holds any more keep only its keyed reference (:func:`forget_numbers`,
  defined with their table in ``catalogue/restrictions.py``).

Expiry, erasure, reconciliation, holds, relinking, retention changes, ingest
and the lookup views all call these; none writes its own version.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from recarchive.catalogue.data_keys import destroy_data_key, destroy_data_keys
from recarchive.catalogue.intake import (
    FORGOTTEN_PREFIX,
    QuarantineEntry,
    WorkItem,
    forgotten_call,
    forgotten_ref,
)
from recarchive.catalogue.models import Recording, RecordingCandidate
from recarchive.catalogue.restrictions import forget_numbers
from recarchive.catalogue.services import CLASS_TAG
from recarchive.config import RetentionSettings
from recarchive.errors import StoreError
from recarchive.retention.models import Hold, HoldRecording, Tombstone
from recarchive.retention.policy import RetentionPolicy
from recarchive.storage.interfaces import ObjectStore

logger = logging.getLogger(__name__)

__all__ = [
    "CLASS_TAG",
    "Buried",
    "bury",
    "customers_held",
    "expected_tag",
    "forget_numbers",
    "held_condition",
    "held_recording_ids",
    "hold_in_force",
    "holds_covering",
    "retag",
]


# --- holds ----------------------------------------------------------------------


def hold_in_force(now: dt.datetime | ColumnElement[dt.datetime]) -> ColumnElement[bool]:
    """SQL: the hold (``Hold``) is in force at ``now``: not released, not past its ``until``."""
    return and_(Hold.released_at.is_(None), or_(Hold.until.is_(None), Hold.until > now))


def held_condition(now: dt.datetime | ColumnElement[dt.datetime]) -> ColumnElement[bool]:
    """SQL: a hold in force covers the recording (``Recording``).

    ``now`` may be a bound parameter, for a statement built once and run many times.
    """
    by_recording = exists().where(
        HoldRecording.recording_id == Recording.id,
        HoldRecording.hold_id == Hold.id,
        hold_in_force(now),
    )
    by_customer = exists().where(
        Hold.customer_id.is_not(None), Hold.customer_id == Recording.customer_id, hold_in_force(now)
    )
    by_candidate = exists().where(
        RecordingCandidate.recording_id == Recording.id,
        Hold.customer_id == RecordingCandidate.customer_id,
        hold_in_force(now),
    )
    return or_(by_recording, by_customer, by_candidate)


def held_recording_ids(
    session: Session, recording_ids: Collection[uuid.UUID], now: dt.datetime
) -> set[uuid.UUID]:
    """Which of ``recording_ids`` a hold in force covers."""
    if not recording_ids:
        return set()
    rows = session.scalars(
        select(Recording.id).where(Recording.id.in_(list(recording_ids)), held_condition(now))
    )
    return set(rows)


def customers_held(session: Session, customer_ids: Iterable[str | None], now: dt.datetime) -> bool:
    """Whether a hold in force names any of ``customer_ids`` (for a call not yet stored)."""
    wanted = sorted({c for c in customer_ids if c})
    if not wanted:
        return False
    found = session.scalar(
        select(Hold.id).where(Hold.customer_id.in_(wanted), hold_in_force(now)).limit(1)
    )
    return found is not None


def holds_covering(
    session: Session,
    recording_id: uuid.UUID,
    customer_ids: Iterable[str | None],
    now: dt.datetime,
    *,
    in_force_only: bool = True,
) -> list[Hold]:
    """The holds on one recording, oldest first.

    ``customer_ids`` are the recording's customer and candidates. With
    ``in_force_only=False`` also the released and lapsed ones (the history a
    data subject's copy shows).
    """
    customers = sorted({c for c in customer_ids if c})
    linked = select(HoldRecording.hold_id).where(HoldRecording.recording_id == recording_id)
    covers = or_(Hold.id.in_(linked), Hold.customer_id.in_(customers))
    condition = and_(covers, hold_in_force(now)) if in_force_only else covers
    return list(session.scalars(select(Hold).where(condition).order_by(Hold.placed_at, Hold.id)))


# --- object tags ----------------------------------------------------------------


def expected_tag(retention: RetentionSettings, rule: str, *, held: bool) -> str:
    """The retention-class tag an object decided by ``rule`` should carry.

    A held object carries the held class, which the bucket's backstop
    lifecycle rule does not match; otherwise the class of its retention rule.
    """
    return retention.held_class if held else RetentionPolicy(retention).class_for(rule)


def retag(
    sessions: sessionmaker[Session],
    store: ObjectStore,
    retention: RetentionSettings,
    recordings: Sequence[Recording],
    now: dt.datetime,
) -> dict[uuid.UUID, str]:
    """Give each recording's object the tag it should carry now; return the failures.

    Called after the change that decides the tag is committed: a failed
    retag only delays the backstop (or the held class arrives late, which the
    catalogue's holds make harmless), so it is logged and returned, not raised.
    """
    if not recordings:
        return {}
    with sessions() as session:
        held = held_recording_ids(session, [r.id for r in recordings], now)
    failures: dict[uuid.UUID, str] = {}
    for recording in recordings:
        tag = expected_tag(retention, recording.retention_rule, held=recording.id in held)
        try:
            store.set_tags(recording.object_key, {CLASS_TAG: tag})
        except StoreError as exc:
            failures[recording.id] = exc.message
            logger.warning(
                "retag_failed", extra={"recording_id": str(recording.id), "error": exc.message}
            )
    return failures


def retag_held_since_planned(
    sessions: sessionmaker[Session],
    store: ObjectStore,
    retention: RetentionSettings,
    recording_ids: Collection[uuid.UUID],
    now: dt.datetime,
) -> dict[uuid.UUID, str]:
    """Recordings just catalogued untagged as held that a hold covers now: tag them held.

    Ingest decides an object's tag before it stores it (:func:`customers_held`).
    A hold on the caller placed between that decision and the commit of the
    recording's row tags the catalogued recordings it covers, which this one
    was not yet among; ingest calls this after each commit with the
    recordings it did not tag held, so the backstop never matches a held
    object. Returns the failures, as :func:`retag` does.
    """
    if not recording_ids:
        return {}
    with sessions() as session:
        held = held_recording_ids(session, recording_ids, now)
        recordings = (
            list(session.scalars(select(Recording).where(Recording.id.in_(list(held)))))
            if held
            else []
        )
    return retag(sessions, store, retention, recordings, now)


# --- deletion -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Buried:
    """A recording whose object is gone: what its tombstone records."""

    recording_id: uuid.UUID
    object_key: str
    sha256: str
    size_bytes: int
    retain_until: dt.datetime
    #: ``retention:<rule>``, ``erasure``, ``bucket-lifecycle``...
    rule: str
    #: The run whose claim this deletion is made under (``retention/claims.py``).
    claimed_by: str | None = None
    #: The data-subject request the recording is deleted for, if any.
    request_id: uuid.UUID | None = None

    @classmethod
    def of(
        cls,
        recording: Recording,
        rule: str,
        *,
        claimed_by: str | None = None,
        request_id: uuid.UUID | None = None,
    ) -> Buried:
        """What the tombstone of ``recording`` will record, deleted under ``rule``."""
        return cls(
            recording_id=recording.id,
            object_key=recording.object_key,
            sha256=recording.sha256,
            size_bytes=recording.size_bytes,
            retain_until=recording.retain_until,
            rule=rule,
            claimed_by=claimed_by,
            request_id=request_id,
        )


def bury(
    session: Session,
    gone: Buried,
    *,
    deleted_by: str,
    digest_key: str,
    now: dt.datetime,
    request_id: uuid.UUID | None = None,
    scrub_intake: bool = True,
) -> bool:
    """Record a deletion: the tombstone, the data key destroyed, the intake records scrubbed.

    ``scrub_intake=False``: the caller scrubs the intake records of a whole
    batch at once (:func:`forget_intake`), in the same transaction.

    An encrypted recording's data key is destroyed here, in the transaction
    of its tombstone, which records when (``key_destroyed_at``): no copy of
    its object can be decrypted after the commit.

    The caller deletes the recording's row in the same transaction. Its work
    items keep only a keyed digest of their source reference (so the same
    delivery is still recognised and not archived again) and of the call id
    (so a late CDR row is not reported as a call without recording); their
    payload (numbers, agent, queue, CDR fields) and last error go; the SHA-256 of
    the bytes archived stays, as in the tombstone. Resolved
    quarantine entries about the same source reference go too. Returns False
    when the recording already has a tombstone (nothing is done then): another
    runner buried it, even one whose transaction commits while this one waits.
    """
    values = _tombstone_values(gone, deleted_by, now, request_id)
    if not _insert_tombstone(session, values):
        return False
    if destroy_data_key(session, gone.recording_id):
        session.execute(
            update(Tombstone)
            .where(Tombstone.recording_id == gone.recording_id)
            .values(key_destroyed_at=now)
        )
    if scrub_intake:
        forget_intake(session, [gone.recording_id], digest_key=digest_key, now=now)
    return True


def bury_many(
    session: Session,
    items: Sequence[Buried],
    *,
    deleted_by: str,
    digest_key: str,
    now: dt.datetime,
    request_id: uuid.UUID | None = None,
) -> list[Buried]:
    """:func:`bury` for a batch, set-wise: the ones buried now (not by another run), in order.

    One multi-row tombstone insert (ON CONFLICT DO NOTHING RETURNING), one
    delete of their data keys, one intake scrub: the same records as
    :func:`bury` one by one, in the caller's transaction, in a few statements
    for a thousand recordings. Other catalogues than PostgreSQL and SQLite
    bury one by one.
    """
    if not items:
        return []
    dialect = session.get_bind().dialect.name
    if dialect not in ("postgresql", "sqlite"):
        buried = [
            item
            for item in items
            if bury(
                session, item, deleted_by=deleted_by, digest_key=digest_key, now=now,
                request_id=request_id, scrub_intake=False,
            )
        ]  # fmt: skip
    else:
        rows = [_tombstone_values(item, deleted_by, now, request_id) for item in items]
        insert_of = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = (
            insert_of(Tombstone)
            .on_conflict_do_nothing(index_elements=["recording_id"])
            .returning(Tombstone.recording_id)
        )
        inserted: set[uuid.UUID] = set()
        for start in range(0, len(rows), 500):
            inserted.update(session.scalars(statement, rows[start : start + 500]))
        buried = [item for item in items if item.recording_id in inserted]
        _destroy_data_keys(session, [item.recording_id for item in buried], now)
    forget_intake(session, [item.recording_id for item in buried], digest_key=digest_key, now=now)
    return buried


def _tombstone_values(
    gone: Buried, deleted_by: str, now: dt.datetime, request_id: uuid.UUID | None
) -> dict[str, Any]:
    return {
        "recording_id": gone.recording_id,
        "object_key": gone.object_key,
        "sha256": gone.sha256,
        "size_bytes": gone.size_bytes,
        "retain_until": gone.retain_until,
        "deleted_at": now,
        "rule": gone.rule,
        "deleted_by": deleted_by,
        "request_id": request_id or gone.request_id,
    }


def _destroy_data_keys(session: Session, ids: list[uuid.UUID], now: dt.datetime) -> None:
    """Destroy the data keys of ``ids`` and note when in their tombstones (PostgreSQL, SQLite)."""
    destroyed = destroy_data_keys(session, ids)
    for start in range(0, len(destroyed), 500):
        session.execute(
            update(Tombstone)
            .where(Tombstone.recording_id.in_(destroyed[start : start + 500]))
            .values(key_destroyed_at=now)
        )


def _insert_tombstone(session: Session, values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING: False when the tombstone exists already.

    A concurrent insert of the same tombstone makes this one wait for it and
    then do nothing, rather than fail on the primary key.
    """
    dialect = session.get_bind().dialect.name
    conflict = ["recording_id"]
    if dialect == "postgresql":
        statement = postgresql.insert(Tombstone).values(**values)
        result = session.execute(statement.on_conflict_do_nothing(index_elements=conflict))
    elif dialect == "sqlite":
        lite = sqlite.insert(Tombstone).values(**values)
        result = session.execute(lite.on_conflict_do_nothing(index_elements=conflict))
    else:
        if session.get(Tombstone, values["recording_id"]) is not None:
            return False
        session.add(Tombstone(**values))
        return True
    return bool(getattr(result, "rowcount", 0))


def forget_intake(
    session: Session, recording_ids: Sequence[uuid.UUID], *, digest_key: str, now: dt.datetime
) -> int:
    """Scrub the work items of deleted recordings (see :func:`bury`); return how many."""
    items = list(
        session.scalars(
            select(WorkItem).where(
                WorkItem.recording_id.in_(list(recording_ids)),
                ~WorkItem.source_ref.startswith(FORGOTTEN_PREFIX),
            )
        )
    )
    for item in items:
        call_id = (item.payload.get("facts") or {}).get("call_id")
        original = item.source_ref
        session.execute(
            delete(QuarantineEntry)
            .where(
                QuarantineEntry.source == item.source,
                QuarantineEntry.source_ref == original,
                QuarantineEntry.resolved_at.is_not(None),
            )
            .execution_options(synchronize_session=False)
        )
        item.source_ref = forgotten_ref(digest_key, item.source, original)
        # What stays: the digest of the call id, and the SHA-256 of the bytes archived
        # (as in the tombstone), so a redelivery is told apart from a different file.
        kept: dict[str, str] = {}
        if call_id:
            kept["call"] = forgotten_call(digest_key, item.source, call_id)
        if item.payload.get("source_sha256"):
            kept["source_sha256"] = item.payload["source_sha256"]
        item.payload = kept
        item.last_error = None
        item.claimed_by = None
        item.updated_at = now
    return len(items)
