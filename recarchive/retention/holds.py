"""Holds: a billing dispute or a legal claim suspends deletion until released.

A hold names recordings, or a customer (then it covers every recording of
that customer, including ones ingested while it is open). A held recording
is never deleted, by expiry or anything else, until every hold on it is
released. Its object is retagged with the held class so that the bucket's
lifecycle backstop skips it too; releasing the last hold tags it back.

A hold may belong to a dispute case (``case_id``): the case extends and
reduces it as recordings are linked and unlinked (:func:`extend_hold`,
:func:`reduce_hold`), and only closing the case releases it.

Placing, changing and releasing holds is recorded in the audit log (who,
when, why).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from collections.abc import Callable, Sequence

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from recarchive.access.actors import Actor
from recarchive.access.audit import append_event
from recarchive.access.policy import Action
from recarchive.catalogue.database import lock_for_write, transaction, utcnow
from recarchive.catalogue.models import Recording, RecordingCandidate, RecordingStatus
from recarchive.errors import ConflictError, NotFoundError, StoreError
from recarchive.parts import Archive, Sessions
from recarchive.retention.events import HOLD_RELEASED, HoldReleased
from recarchive.retention.models import Hold, HoldRecording
from recarchive.retention.rules import (
    CLASS_TAG,
    expected_tag,
    held_condition,
    held_recording_ids,
    retag,
)
from recarchive.runtime import Runtime

logger = logging.getLogger(__name__)

__all__ = [
    "CLASS_TAG",
    "HoldError",
    "HoldNotFound",
    "extend_hold",
    "held_condition",
    "held_recording_ids",
    "place_hold",
    "reduce_hold",
    "release_hold",
]

#: How far ahead a hold's ``until`` may lie: further is a typo, not a plan.
MAX_HOLD_YEARS = 100


class HoldError(ConflictError):
    """The hold cannot be placed or released."""


class HoldNotFound(NotFoundError, HoldError):
    """No hold has that id."""


@dataclasses.dataclass(frozen=True)
class HoldSummary:
    hold: Hold
    recordings: int


#: A change of the caller's own rows, written in the hold's transaction after the hold's
#: change and before the store is touched: it commits with the hold or not at all.
AlsoWrite = Callable[[Session, Hold], None]


def place_hold(
    runtime: Archive,
    *,
    case_ref: str,
    reason: str,
    actor: Actor,
    recording_ids: Sequence[uuid.UUID] = (),
    customer_id: str | None = None,
    until: dt.datetime | None = None,
    case_id: uuid.UUID | None = None,
    also: AlsoWrite | None = None,
) -> HoldSummary:
    """Place a hold on recordings or on a customer; retag the objects; audit it.

    ``case_id``: the dispute case the hold belongs to (then only closing the
    case releases it). ``also`` writes the caller's own rows in the same
    transaction (see :data:`AlsoWrite`).

    Raises :class:`HoldError` for unknown recording ids (all of them named),
    recordings already being deleted, an ``until`` in the past, or neither
    recordings nor a customer. The objects are retagged before the hold is
    committed: if the store fails, no hold is recorded and the error says so.
    :class:`~recarchive.access.policy.Forbidden` unless ``actor`` may place holds.
    """
    actor.require(Action.HOLD_PLACE)
    now = utcnow()
    if bool(recording_ids) == bool(customer_id):
        raise HoldError("give recording ids or a customer id (one of them)")
    _check_until(until, now)
    if not case_ref.strip() or not reason.strip():
        raise HoldError("a hold needs a case reference and a reason")
    with transaction(runtime.sessions) as session:
        # Under the write lock from here on: an expiry or erasure claiming the same
        # recordings commits either before (they are refused below) or after (it sees
        # this hold). SQLite ignores FOR UPDATE; without the lock a hold could be
        # accepted for a recording an expiry run had just claimed.
        lock_for_write(session)
        covered = _lock_recordings(session, list(recording_ids), customer_id)
        _check_holdable(covered, recording_ids)
        hold = Hold(
            case_ref=case_ref.strip(),
            reason=reason.strip(),
            customer_id=customer_id,
            placed_by=actor.name,
            until=until,
            case_id=case_id,
        )
        hold.recordings = (
            [HoldRecording(recording_id=r.id) for r in covered] if recording_ids else []
        )
        session.add(hold)
        session.flush()
        append_event(
            session,
            actor=actor.name,
            actor_role=actor.role_name,
            action="hold.place",
            case_ref=hold.case_ref,
            client_addr=actor.client_addr,
            details={
                "hold_id": str(hold.id),
                "customer_hold": customer_id is not None,
                "recordings": len(covered),
                "reason": hold.reason,
                "until": until.isoformat() if until else None,
                **({"case_id": str(case_id)} if case_id else {}),
            },
        )
        if also is not None:
            also(session, hold)
        _tag_held(runtime, covered)
    logger.info("hold_placed", extra={"hold_id": str(hold.id), "recordings": len(covered)})
    return HoldSummary(hold=hold, recordings=len(covered))


def _check_holdable(covered: Sequence[Recording], wanted: Sequence[uuid.UUID]) -> None:
    """Refuse unknown recordings (all named) and recordings being deleted (under a claim).

    Called under the write lock with the rows locked: an expiry or erasure
    that claimed a recording committed before, and it is refused here, never
    held after the fact.
    """
    if wanted:
        missing = sorted(str(i) for i in set(wanted) - {r.id for r in covered})
        if missing:
            raise HoldError(f"no recording {', '.join(missing)}; nothing was held")
    deleting = sorted(str(r.id) for r in covered if r.status is RecordingStatus.DELETING)
    if deleting:
        raise HoldError(
            f"recording {', '.join(deleting)} is being deleted (its retention ended); "
            "nothing was held"
        )


def _tag_held(runtime: Archive, recordings: Sequence[Recording]) -> None:
    """Tag the objects held, before the commit: a store failure leaves nothing held."""
    held_tag = expected_tag(runtime.settings.retention, "", held=True)
    try:
        for recording in recordings:
            runtime.store.set_tags(recording.object_key, {CLASS_TAG: held_tag})
    except StoreError as exc:
        raise HoldError(
            f"could not retag the held objects ({exc.message}); nothing was held"
        ) from exc


def _open_hold(session: Session, hold_id: uuid.UUID) -> Hold:
    """The hold, locked; :class:`HoldNotFound`, or :class:`HoldError` when released."""
    hold = session.get(Hold, hold_id, with_for_update=True)
    if hold is None:
        raise HoldNotFound(f"no hold {hold_id}")
    if hold.released_at is not None:
        raise HoldError(
            f"hold {hold_id} was already released at {hold.released_at.isoformat()} "
            f"by {hold.released_by}"
        )
    return hold


def extend_hold(
    runtime: Archive,
    hold_id: uuid.UUID,
    recording_ids: Sequence[uuid.UUID],
    *,
    actor: Actor,
    also: AlsoWrite | None = None,
) -> HoldSummary:
    """Add recordings to an open hold on recordings; retag them held; audit ``hold.extend``.

    Recordings the hold already names are left as they are (adding one twice
    changes nothing). Refused as :func:`place_hold` refuses: unknown
    recordings, recordings being deleted, and a hold on a customer or one
    already released. ``also``: see :data:`AlsoWrite`.
    """
    actor.require(Action.HOLD_PLACE)
    wanted = list(dict.fromkeys(recording_ids))
    with transaction(runtime.sessions) as session:
        lock_for_write(session)  # as place_hold: a claim commits before (refused) or after
        hold = _open_hold(session, hold_id)
        if hold.customer_id is not None:
            raise HoldError(f"hold {hold_id} is on a customer: it covers their recordings already")
        covered = _lock_recordings(session, wanted, None) if wanted else []
        _check_holdable(covered, wanted)
        named = {link.recording_id for link in hold.recordings}
        added = [r for r in covered if r.id not in named]
        hold.recordings.extend(HoldRecording(recording_id=r.id) for r in added)
        session.flush()
        if added:
            append_event(
                session,
                actor=actor.name,
                actor_role=actor.role_name,
                action="hold.extend",
                case_ref=hold.case_ref,
                client_addr=actor.client_addr,
                details={"hold_id": str(hold.id), "recordings_added": len(added)},
            )
        if also is not None:
            also(session, hold)
        _tag_held(runtime, added)
        count = len(hold.recordings)
    logger.info("hold_extended", extra={"hold_id": str(hold_id), "recordings": len(added)})
    return HoldSummary(hold=hold, recordings=count)


def reduce_hold(
    runtime: Runtime,
    hold_id: uuid.UUID,
    recording_ids: Sequence[uuid.UUID],
    *,
    actor: Actor,
    also: AlsoWrite | None = None,
) -> HoldSummary:
    """Take recordings out of an open hold on recordings; audit ``hold.reduce``.

    Those no other hold covers get their retention class back and are freed
    as a release frees them (:data:`~recarchive.retention.events.HOLD_RELEASED`:
    a pending erasure resumes; expiry deletes them if due). Ids the hold does
    not name are ignored. ``also``: see :data:`AlsoWrite`.
    """
    actor.require(Action.HOLD_RELEASE)
    now = utcnow()
    wanted = set(recording_ids)
    with transaction(runtime.sessions) as session:
        lock_for_write(session)
        hold = _open_hold(session, hold_id)
        taken = [link for link in hold.recordings if link.recording_id in wanted]
        for link in taken:
            hold.recordings.remove(link)
        session.flush()
        ids = [link.recording_id for link in taken]
        recordings = list(session.scalars(select(Recording).where(Recording.id.in_(ids))))
        still_held = held_recording_ids(session, ids, now)
        freed = [r for r in recordings if r.id not in still_held]
        if taken:
            append_event(
                session,
                actor=actor.name,
                actor_role=actor.role_name,
                action="hold.reduce",
                case_ref=hold.case_ref,
                client_addr=actor.client_addr,
                details={
                    "hold_id": str(hold.id),
                    "recordings_removed": len(taken),
                    "recordings_freed": len(freed),
                },
            )
        if also is not None:
            also(session, hold)
        count = len(hold.recordings)
    _settle_freed(runtime, hold.id, freed)
    return HoldSummary(hold=hold, recordings=count)


def _settle_freed(runtime: Runtime, hold_id: uuid.UUID, freed: Sequence[Recording]) -> None:
    """After the commit: retag what a hold no longer keeps; tell who waited for it."""
    # A failed retag only delays the backstop.
    retag(runtime.sessions, runtime.store, runtime.settings.retention, freed, utcnow())
    if freed:
        # What waited for this hold goes on now: erasure requests (privacy).
        HOLD_RELEASED.publish(HoldReleased(runtime, hold_id, tuple(r.id for r in freed)))


def _check_until(until: dt.datetime | None, now: dt.datetime) -> None:
    """An ``until`` must be an aware time in the future, within :data:`MAX_HOLD_YEARS`."""
    if until is None:
        return
    if until.tzinfo is None or until.utcoffset() is None:
        raise HoldError("until needs a time zone (for example 2027-01-31T00:00:00+02:00)")
    try:
        until_utc = until.astimezone(dt.UTC)
    except OverflowError:
        raise HoldError(f"until {until.isoformat()} is out of range") from None
    if until_utc <= now:
        raise HoldError(f"until {until.isoformat()} is in the past")
    if until_utc > now + dt.timedelta(days=365 * MAX_HOLD_YEARS):
        raise HoldError(
            f"until {until.isoformat()} is more than {MAX_HOLD_YEARS} years ahead; "
            "leave it out for a hold without an end"
        )


def _covering_customer(customer_id: str) -> ColumnElement[bool]:
    """SQL: the recording is the customer's, or they are one of its candidates."""
    candidates = select(RecordingCandidate.recording_id).where(
        RecordingCandidate.customer_id == customer_id
    )
    return or_(Recording.customer_id == customer_id, Recording.id.in_(candidates))


def _lock_recordings(
    session: Session, recording_ids: list[uuid.UUID], customer_id: str | None
) -> list[Recording]:
    statement = select(Recording).with_for_update()
    if recording_ids:
        statement = statement.where(Recording.id.in_(recording_ids))
    else:
        assert customer_id is not None
        statement = statement.where(_covering_customer(customer_id))
    return list(session.scalars(statement.order_by(Recording.id)))


def release_hold(
    runtime: Runtime,
    hold_id: uuid.UUID,
    *,
    actor: Actor,
    reason: str,
    case_release: bool = False,
    also: AlsoWrite | None = None,
) -> HoldSummary:
    """Release a hold; recordings under no other hold get their retention class back.

    Raises :class:`HoldNotFound` and :class:`HoldError` (already released,
    naming when and by whom; a dispute case's hold unless ``case_release``:
    the case releases it when it is closed). A recording whose retention has ended is then
    deleted by the next expiry run; one waiting for a data subject's erasure
    is erased at once (:data:`~recarchive.retention.events.HOLD_RELEASED`).
    :class:`~recarchive.access.policy.Forbidden` unless ``actor`` may release holds.
    """
    actor.require(Action.HOLD_RELEASE)
    now = utcnow()
    with transaction(runtime.sessions) as session:
        lock_for_write(session)
        hold = _open_hold(session, hold_id)
        if hold.case_id is not None and not case_release:
            raise HoldError(
                f"hold {hold_id} belongs to dispute case {hold.case_ref}: "
                "close the case to release it"
            )
        hold.released_at = now
        hold.released_by = actor.name
        hold.release_reason = reason
        covered = _covered(session, hold)
        session.flush()
        still_held = held_recording_ids(session, [r.id for r in covered], now)
        freed = [r for r in covered if r.id not in still_held]
        append_event(
            session,
            actor=actor.name,
            actor_role=actor.role_name,
            action="hold.release",
            case_ref=hold.case_ref,
            client_addr=actor.client_addr,
            details={"hold_id": str(hold.id), "reason": reason, "recordings_freed": len(freed)},
        )
        if also is not None:
            also(session, hold)
    _settle_freed(runtime, hold.id, freed)
    return HoldSummary(hold=hold, recordings=len(covered))


def _covered(session: Session, hold: Hold) -> list[Recording]:
    if hold.customer_id is not None:
        statement = select(Recording).where(_covering_customer(hold.customer_id))
    else:
        ids = [link.recording_id for link in hold.recordings]
        statement = select(Recording).where(Recording.id.in_(ids))
    return list(session.scalars(statement))


def list_holds(
    runtime: Sessions, actor: Actor, *, include_released: bool = False
) -> list[tuple[Hold, int]]:
    """Holds with the number of recordings each covers now, newest first (if ``actor`` may)."""
    actor.require(Action.HOLD_LIST)
    with runtime.sessions() as session:
        statement = select(Hold).order_by(Hold.placed_at.desc())
        if not include_released:
            statement = statement.where(Hold.released_at.is_(None))
        holds = list(session.scalars(statement))
        return [(hold, len(_covered(session, hold))) for hold in holds]
