"""Which restrictions and objections cover a recording, and what they let staff do.

The one owner of these rules; the lookup views, search, audio and exports
call it. A restriction or a training objection covers a recording when it
names the recording, the recording's customer, a customer who is one of
the candidates of a call from a shared number (the safe side: a shared
number's calls leave training, or are restricted, as soon as any of its
customers asks), or the caller's number when no customer is linked.
QA trainers never learn of a restricted or objected recording at all.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from sqlalchemy import ColumnElement, and_, exists, or_, select, true
from sqlalchemy.orm import Session

from recarchive.access.models import Role
from recarchive.access.policy import TRAINING_ROLES, Forbidden, Purpose
from recarchive.catalogue.models import Recording, RecordingCandidate
from recarchive.catalogue.restrictions import ProcessingRestriction, RestrictionKind

__all__ = [
    "Restricted",
    "check_restrictions",
    "restriction_condition",
    "restrictions_for",
    "visible_condition",
]


class Restricted(Forbidden):
    """processing of this recording is restricted"""

    code = "restricted"


def restriction_condition(kinds: Sequence[RestrictionKind]) -> ColumnElement[bool]:
    """SQL: an unlifted restriction of one of ``kinds`` covers the recording (``Recording``)."""
    in_force = and_(
        ProcessingRestriction.kind.in_(list(kinds)), ProcessingRestriction.lifted_at.is_(None)
    )
    direct = exists().where(
        in_force,
        or_(
            ProcessingRestriction.recording_id == Recording.id,
            and_(
                ProcessingRestriction.customer_id.is_not(None),
                ProcessingRestriction.customer_id == Recording.customer_id,
            ),
            and_(
                ProcessingRestriction.number.is_not(None),
                Recording.customer_id.is_(None),
                or_(
                    ProcessingRestriction.number == Recording.caller_number,
                    ProcessingRestriction.number == Recording.called_number,
                ),
            ),
        ),
    )
    by_candidate = exists().where(
        in_force,
        RecordingCandidate.recording_id == Recording.id,
        ProcessingRestriction.customer_id == RecordingCandidate.customer_id,
    )
    return or_(direct, by_candidate)


@functools.cache
def visible_condition(role: Role) -> ColumnElement[bool]:
    """SQL: recordings the role may know of at all (built once per role)."""
    if role in TRAINING_ROLES:
        return ~restriction_condition([RestrictionKind.RESTRICTION, RestrictionKind.OBJECTION])
    return true()


def restrictions_for(session: Session, recording: Recording) -> list[ProcessingRestriction]:
    """The unlifted restrictions and objections covering one recording."""
    conditions: list[ColumnElement[bool]] = [ProcessingRestriction.recording_id == recording.id]
    customers = [c.customer_id for c in recording.candidates]
    if recording.customer_id is not None:
        customers.append(recording.customer_id)
    if customers:
        conditions.append(ProcessingRestriction.customer_id.in_(sorted(set(customers))))
    if recording.customer_id is None:
        numbers = [n for n in (recording.caller_number, recording.called_number) if n]
        if numbers:
            conditions.append(ProcessingRestriction.number.in_(numbers))
    return list(
        session.scalars(
            select(ProcessingRestriction).where(
                ProcessingRestriction.lifted_at.is_(None), or_(*conditions)
            )
        )
    )


def check_restrictions(
    restrictions: Sequence[ProcessingRestriction], purpose: Purpose, case_ref: str | None
) -> None:
    """Raise :class:`Restricted` unless ``purpose`` (and case) is allowed by every restriction."""
    for restriction in restrictions:
        if restriction.kind is RestrictionKind.OBJECTION:
            if purpose in (Purpose.TRAINING, Purpose.SELF_REVIEW):
                raise Restricted("the caller objected to training use of this recording")
            continue
        allowed_case = restriction.case_ref
        if restriction.allowed_purpose != purpose.value or (
            allowed_case is not None and (case_ref or "").strip() != allowed_case
        ):
            # The case that unlocks it is not named: knowing it must be the point.
            scope = f"one {restriction.allowed_purpose} case" if allowed_case else None
            raise Restricted(
                "processing of this recording is restricted to "
                f"{scope or restriction.allowed_purpose or 'no purpose'}"
            )
