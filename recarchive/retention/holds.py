"""Holds: a billing dispute or a legal claim suspends deletion until released.

A hold names recordings, or a customer (then it covers every recording of
that customer, including ones ingested while it is open). A held recording
is never deleted, by expiry or anything else, until every hold on it is
released. Its object is retagged with the held class so that the bucket's
lifecycle backstop skips it too; releasing the last hold tags it back.

Placing and releasing holds is recorded in the audit log (who, when, why).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from collections.abc import Collection, Sequence

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.orm import Session

from recarchive.access.audit import append_event
from recarchive.catalogue.database import transaction, utcnow
from recarchive.catalogue.models import Recording, RecordingStatus
from recarchive.catalogue.services import CLASS_TAG
from recarchive.errors import RecArchiveError, StoreError
from recarchive.retention.models import Hold, HoldRecording
from recarchive.retention.policy import RetentionPolicy
from recarchive.runtime import Runtime

logger = logging.getLogger(__name__)

__all__ = ["CLASS_TAG", "HoldError", "HoldNotFound", "place_hold", "release_hold"]


class HoldError(RecArchiveError):
    """The hold cannot be placed or released."""


class HoldNotFound(HoldError):
    """No hold has that id."""


def _active(now: dt.datetime | ColumnElement[dt.datetime]) -> ColumnElement[bool]:
    return and_(Hold.released_at.is_(None), or_(Hold.until.is_(None), Hold.until > now))


def held_condition(now: dt.datetime | ColumnElement[dt.datetime]) -> ColumnElement[bool]:
    """SQL condition: the recording (``Recording``) is under at least one active hold.

    ``now`` may be a bound parameter, for a statement built once and run many times.
    """
    by_recording = exists().where(
        HoldRecording.recording_id == Recording.id,
        HoldRecording.hold_id == Hold.id,
        _active(now),
    )
    by_customer = exists().where(
        Hold.customer_id.is_not(None), Hold.customer_id == Recording.customer_id, _active(now)
    )
    return or_(by_recording, by_customer)


def customer_is_held(session: Session, customer_id: str | None, now: dt.datetime) -> bool:
    if customer_id is None:
        return False
    found = session.scalar(
        select(Hold.id).where(Hold.customer_id == customer_id, _active(now)).limit(1)
    )
    return found is not None


def held_recording_ids(
    session: Session, recording_ids: Collection[uuid.UUID], now: dt.datetime
) -> set[uuid.UUID]:
    """Which of ``recording_ids`` are under an active hold."""
    if not recording_ids:
        return set()
    rows = session.scalars(
        select(Recording.id).where(Recording.id.in_(list(recording_ids)), held_condition(now))
    )
    return set(rows)


@dataclasses.dataclass(frozen=True)
class HoldSummary:
    hold: Hold
    recordings: int


def place_hold(
    runtime: Runtime,
    *,
    case_ref: str,
    reason: str,
    actor: str,
    recording_ids: Sequence[uuid.UUID] = (),
    customer_id: str | None = None,
    until: dt.datetime | None = None,
    actor_role: str | None = None,
    client_addr: str | None = None,
) -> HoldSummary:
    """Place a hold on recordings or on a customer; retag the objects; audit it.

    Raises :class:`HoldError` for unknown recording ids (all of them named),
    recordings already being deleted, an ``until`` in the past, or neither
    recordings nor a customer. The objects are retagged before the hold is
    committed: if the store fails, no hold is recorded and the error says so.
    """
    now = utcnow()
    if bool(recording_ids) == bool(customer_id):
        raise HoldError("give recording ids or a customer id (one of them)")
    if until is not None and until <= now:
        raise HoldError(f"--until {until.isoformat()} is in the past")
    if not case_ref.strip() or not reason.strip():
        raise HoldError("a hold needs a case reference and a reason")
    with transaction(runtime.sessions) as session:
        covered = _lock_recordings(session, list(recording_ids), customer_id)
        if recording_ids:
            missing = sorted(str(i) for i in set(recording_ids) - {r.id for r in covered})
            if missing:
                raise HoldError(f"no recording {', '.join(missing)}; nothing was held")
        deleting = sorted(str(r.id) for r in covered if r.status is RecordingStatus.DELETING)
        if deleting:
            raise HoldError(
                f"recording {', '.join(deleting)} is being deleted (its retention ended); "
                "nothing was held"
            )
        hold = Hold(
            case_ref=case_ref.strip(),
            reason=reason.strip(),
            customer_id=customer_id,
            placed_by=actor,
            until=until,
        )
        hold.recordings = (
            [HoldRecording(recording_id=r.id) for r in covered] if recording_ids else []
        )
        session.add(hold)
        session.flush()
        append_event(
            session,
            actor=actor,
            actor_role=actor_role,
            action="hold.place",
            case_ref=hold.case_ref,
            client_addr=client_addr,
            details={
                "hold_id": str(hold.id),
                "customer_hold": customer_id is not None,
                "recordings": len(covered),
                "reason": hold.reason,
                "until": until.isoformat() if until else None,
            },
        )
        held_class = runtime.settings.retention.held_class
        try:
            for recording in covered:
                runtime.store.set_tags(recording.object_key, {CLASS_TAG: held_class})
        except StoreError as exc:
            raise HoldError(
                f"could not retag the held objects ({exc.message}); nothing was held"
            ) from exc
    logger.info("hold_placed", extra={"hold_id": str(hold.id), "recordings": len(covered)})
    return HoldSummary(hold=hold, recordings=len(covered))


def _lock_recordings(
    session: Session, recording_ids: list[uuid.UUID], customer_id: str | None
) -> list[Recording]:
    statement = select(Recording).with_for_update()
    if recording_ids:
        statement = statement.where(Recording.id.in_(recording_ids))
    else:
        statement = statement.where(Recording.customer_id == customer_id)
    return list(session.scalars(statement.order_by(Recording.id)))


def release_hold(
    runtime: Runtime,
    hold_id: uuid.UUID,
    *,
    actor: str,
    reason: str,
    actor_role: str | None = None,
    client_addr: str | None = None,
) -> HoldSummary:
    """Release a hold; recordings under no other hold get their retention class back.

    Raises :class:`HoldNotFound` and :class:`HoldError` (already released,
    naming when and by whom). A recording whose retention has ended is then
    deleted by the next expiry run; one waiting for a data subject's erasure
    is erased at once.
    """
    now = utcnow()
    with transaction(runtime.sessions) as session:
        hold = session.get(Hold, hold_id, with_for_update=True)
        if hold is None:
            raise HoldNotFound(f"no hold {hold_id}")
        if hold.released_at is not None:
            raise HoldError(
                f"hold {hold_id} was already released at {hold.released_at.isoformat()} "
                f"by {hold.released_by}"
            )
        hold.released_at = now
        hold.released_by = actor
        hold.release_reason = reason
        covered = _covered(session, hold)
        session.flush()
        still_held = held_recording_ids(session, [r.id for r in covered], now)
        freed = [r for r in covered if r.id not in still_held]
        append_event(
            session,
            actor=actor,
            actor_role=actor_role,
            action="hold.release",
            case_ref=hold.case_ref,
            client_addr=client_addr,
            details={"hold_id": str(hold.id), "reason": reason, "recordings_freed": len(freed)},
        )
    policy = RetentionPolicy(runtime.settings.retention)
    for recording in freed:  # after the commit: a failed retag only delays the backstop
        try:
            runtime.store.set_tags(
                recording.object_key, {CLASS_TAG: policy.class_for(recording.retention_rule)}
            )
        except StoreError as exc:
            logger.warning(
                "hold_release_retag_failed",
                extra={"recording_id": str(recording.id), "error": exc.message},
            )
    if freed:
        # Erasure requests waiting for this hold finish now (the nightly run retries).
        from recarchive.privacy.erasure import resume_pending_erasures

        try:
            resume_pending_erasures(runtime)
        except RecArchiveError as exc:
            logger.warning("pending_erasures_not_resumed", extra={"error": exc.message})
    return HoldSummary(hold=hold, recordings=len(covered))


def _covered(session: Session, hold: Hold) -> list[Recording]:
    if hold.customer_id is not None:
        statement = select(Recording).where(Recording.customer_id == hold.customer_id)
    else:
        ids = [link.recording_id for link in hold.recordings]
        statement = select(Recording).where(Recording.id.in_(ids))
    return list(session.scalars(statement))


def list_holds(runtime: Runtime, *, include_released: bool = False) -> list[tuple[Hold, int]]:
    """Holds with the number of recordings each covers now, newest first."""
    with runtime.sessions() as session:
        statement = select(Hold).order_by(Hold.placed_at.desc())
        if not include_released:
            statement = statement.where(Hold.released_at.is_(None))
        holds = list(session.scalars(statement))
        return [(hold, len(_covered(session, hold))) for hold in holds]
