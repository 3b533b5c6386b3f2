"""Restriction, objection to training use, and rectification of a subject's data.

A restriction keeps the recordings but serves them to nobody except for the
purpose (and case) it names, until it is lifted. An objection removes the
subject's recordings from every QA trainer's search and playback at once,
keeps them for disputes, and leaves their expiry alone; on a customer it
covers calls that arrive later too, because the check is by customer id at
the moment of access (:mod:`recarchive.lookup.services`).

Rectification relinks a recording to the right customer (or to none); the
old value stays in the audit log. Reason codes are corrected with
:func:`recarchive.privacy.reasons.correct_reasons`, also audited.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Sequence

from sqlalchemy import select

from recarchive.access.audit import append_event
from recarchive.access.policy import CASE_REQUIRED, Action, Purpose, require
from recarchive.access.services import Principal
from recarchive.catalogue.database import transaction, utcnow
from recarchive.catalogue.models import Customer, CustomerMatch, Recording, RecordingStatus
from recarchive.catalogue.restrictions import ProcessingRestriction, RestrictionKind
from recarchive.errors import ConflictError, NotFoundError
from recarchive.parts import Archive, Catalogue, Sessions
from recarchive.privacy.events import TRAINING_EXCLUDED, TrainingExcluded
from recarchive.privacy.models import RequestKind, RequestStatus, SubjectRequest
from recarchive.privacy.subjects import (
    Subject,
    SubjectError,
    SubjectQuery,
    find_subject,
    register_request,
    restriction_dict,
)
from recarchive.retention.rules import retag
from recarchive.runtime import Runtime

logger = logging.getLogger(__name__)


class RestrictionError(ConflictError):
    """the restriction cannot be placed or lifted"""


class RestrictionNotFound(NotFoundError, RestrictionError):
    """no restriction has that id"""


def _targets(
    runtime: Catalogue, query: SubjectQuery | None, recording_ids: Sequence[uuid.UUID]
) -> tuple[Subject | None, list[uuid.UUID]]:
    """The subject (a customer, or an unlinked caller by number) or the named recordings."""
    if bool(query) == bool(recording_ids):
        raise RestrictionError("name a subject or recordings (one of them)")
    if recording_ids:
        with runtime.sessions() as session:
            found = set(
                session.scalars(select(Recording.id).where(Recording.id.in_(list(recording_ids))))
            )
        missing = sorted(str(i) for i in set(recording_ids) - found)
        if missing:
            raise RestrictionError(f"no recording {', '.join(missing)}; nothing was restricted")
        return None, list(dict.fromkeys(recording_ids))
    assert query is not None
    return find_subject(runtime, query), []


def _place(
    runtime: Archive,
    principal: Principal,
    kind: RestrictionKind,
    query: SubjectQuery | None,
    recording_ids: Sequence[uuid.UUID],
    *,
    allowed_purpose: str | None,
    case_ref: str | None,
    note: str | None,
    client_addr: str | None,
) -> tuple[SubjectRequest | None, list[ProcessingRestriction]]:
    require(principal.role, Action.SUBJECT)
    subject, ids = _targets(runtime, query, recording_ids)
    with transaction(runtime.sessions) as session:
        request = None
        if subject is not None:
            request = register_request(
                session,
                kind=RequestKind.RESTRICTION
                if kind is RestrictionKind.RESTRICTION
                else RequestKind.OBJECTION,
                subject=subject,
                principal=principal,
                status=RequestStatus.COMPLETED,
                outcome={"scope": subject.label()},
                note=note,
                client_addr=client_addr,
            )
        rows: list[ProcessingRestriction] = []
        # A customer is covered by id; an unlinked caller by number (their later calls
        # too, while no customer is linked to them); named recordings one by one.
        scopes: list[tuple[str | None, str | None, uuid.UUID | None]] = []
        if subject is not None:
            scopes.append((subject.customer_id, subject.number, None))
        scopes += [(None, None, rid) for rid in ids]
        for customer_id, number, recording_id in scopes:
            unlinked = number if customer_id is None else None
            row = ProcessingRestriction(
                id=uuid.uuid4(),
                kind=kind,
                customer_id=customer_id,
                number=unlinked,
                number_ref=subject.ref if subject is not None and unlinked else None,
                recording_id=recording_id,
                allowed_purpose=allowed_purpose,
                case_ref=case_ref,
                request_id=request.id if request else None,
                created_by=principal.user_name,
            )
            session.add(row)
            rows.append(row)
        session.flush()
        for row in rows:
            append_event(
                session,
                actor=principal.user_name,
                actor_role=principal.role.value,
                action=f"{kind.value}.place",
                recording_id=row.recording_id,
                purpose=allowed_purpose,
                case_ref=case_ref,
                client_addr=client_addr,
                details={"restriction_id": str(row.id), "customer_id": row.customer_id},
            )
    # After the commit: what it covers leaves training at once (QA samples withdraw it).
    TRAINING_EXCLUDED.publish(
        TrainingExcluded(
            runtime, f"{kind.value}.place", principal.user_name, principal.role.value, client_addr
        )
    )
    return request, rows


def restrict(
    runtime: Archive,
    principal: Principal,
    *,
    query: SubjectQuery | None = None,
    recording_ids: Sequence[uuid.UUID] = (),
    allowed_purpose: str,
    case_ref: str | None = None,
    note: str | None = None,
    client_addr: str | None = None,
) -> tuple[SubjectRequest | None, list[ProcessingRestriction]]:
    """Restrict processing to ``allowed_purpose`` (and ``case_ref``) until lifted."""
    try:
        purpose = Purpose(allowed_purpose)
    except ValueError:
        known = ", ".join(p.value for p in Purpose)
        raise RestrictionError(f"unknown purpose {allowed_purpose!r} (purposes: {known})") from None
    case = case_ref.strip() if case_ref and case_ref.strip() else None
    if purpose in CASE_REQUIRED and case is None:
        raise RestrictionError(f"a restriction to {purpose.value} needs the case reference")
    return _place(
        runtime,
        principal,
        RestrictionKind.RESTRICTION,
        query,
        recording_ids,
        allowed_purpose=purpose.value,
        case_ref=case,
        note=note,
        client_addr=client_addr,
    )


def object_to_training(
    runtime: Archive,
    principal: Principal,
    *,
    query: SubjectQuery | None = None,
    recording_ids: Sequence[uuid.UUID] = (),
    note: str | None = None,
    client_addr: str | None = None,
) -> tuple[SubjectRequest | None, list[ProcessingRestriction]]:
    """Exclude the subject's recordings (present and, for a customer, future) from training."""
    return _place(
        runtime,
        principal,
        RestrictionKind.OBJECTION,
        query,
        recording_ids,
        allowed_purpose=None,
        case_ref=None,
        note=note,
        client_addr=client_addr,
    )


def lift_restriction(
    runtime: Sessions,
    principal: Principal,
    restriction_id: uuid.UUID,
    *,
    reason: str,
    client_addr: str | None = None,
) -> ProcessingRestriction:
    """Lift a restriction or objection (audited with the reason)."""
    require(principal.role, Action.SUBJECT)
    if not reason.strip():
        raise RestrictionError("give the reason for lifting it")
    with transaction(runtime.sessions) as session:
        row = session.get(ProcessingRestriction, restriction_id, with_for_update=True)
        if row is None:
            raise RestrictionNotFound(f"no restriction {restriction_id}")
        if row.lifted_at is not None:
            raise RestrictionError(
                f"restriction {restriction_id} was already lifted at {row.lifted_at.isoformat()}"
            )
        row.lifted_at = utcnow()
        row.lifted_by = principal.user_name
        append_event(
            session,
            actor=principal.user_name,
            actor_role=principal.role.value,
            action=f"{row.kind.value}.lift",
            recording_id=row.recording_id,
            client_addr=client_addr,
            details={"restriction_id": str(row.id), "reason": reason.strip()},
        )
    return row


def list_restrictions(
    runtime: Sessions, *, include_lifted: bool = False
) -> list[dict[str, object]]:
    statement = select(ProcessingRestriction).order_by(ProcessingRestriction.created_at.desc())
    if not include_lifted:
        statement = statement.where(ProcessingRestriction.lifted_at.is_(None))
    with runtime.sessions() as session:
        return [restriction_dict(r) for r in session.scalars(statement)]


@dataclasses.dataclass(frozen=True)
class Relinked:
    """What a rectification changed: the link before and after, and the candidates it settled."""

    before: str | None
    after: str | None
    #: The customers an ambiguous call (a number shared by several) was a candidate of.
    candidates: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return self.before != self.after or bool(self.candidates)

    def describe_before(self) -> str:
        """``C-1``, ``nobody``, or ``ambiguous (C-1, C-2)``."""
        if self.before is None and self.candidates:
            return f"ambiguous ({', '.join(self.candidates)})"
        return self.before or "nobody"


def relink_recording(
    runtime: Runtime,
    principal: Principal,
    recording_id: uuid.UUID,
    *,
    customer_id: str | None,
    reason: str,
    client_addr: str | None = None,
) -> Relinked:
    """Link the recording to ``customer_id`` (None: to nobody); returns what changed.

    A call from a number shared by several customers (linked to nobody, with
    candidates) is settled: its candidates are removed, so that the other
    candidates' holds, restrictions and objections no longer reach it. The
    old link and candidates stay in the audit log, and the change is
    registered as a rectification request of the customer it was wrongly
    linked to (or of the new one, when it was linked to nobody; or of the
    first candidate, when an ambiguous call is unlinked).
    """
    require(principal.role, Action.SUBJECT)
    if not reason.strip():
        raise SubjectError("give the reason for the correction")
    with transaction(runtime.sessions) as session:
        recording = session.get(Recording, recording_id, with_for_update=True)
        if recording is None or recording.status is not RecordingStatus.ACTIVE:
            from recarchive.privacy.reasons import RecordingNotFound

            raise RecordingNotFound(f"no recording {recording_id}")
        if customer_id is not None and session.get(Customer, customer_id) is None:
            raise SubjectError(f"no customer {customer_id!r} in the directory")
        candidates = tuple(sorted(c.customer_id for c in recording.candidates))
        change = Relinked(recording.customer_id, customer_id, candidates)
        if not change.changed:
            return change
        recording.customer_id = customer_id
        recording.customer_match = (
            CustomerMatch.MANUAL if customer_id is not None else CustomerMatch.UNKNOWN
        )
        recording.candidates.clear()
        subject_id = change.before or customer_id or candidates[0]
        settled = {"candidates": list(candidates)} if candidates else {}
        register_request(
            session,
            kind=RequestKind.RECTIFICATION,
            subject=Subject(ref=subject_id, customer_id=subject_id),
            principal=principal,
            status=RequestStatus.COMPLETED,
            outcome={
                "recording_id": str(recording_id),
                "before": change.before,
                "after": customer_id,
                **settled,
            },
            note=reason.strip(),
            client_addr=client_addr,
        )
        append_event(
            session,
            actor=principal.user_name,
            actor_role=principal.role.value,
            action="recording.relink",
            recording_id=recording_id,
            client_addr=client_addr,
            details={
                "before": change.before,
                "after": customer_id,
                **settled,
                "reason": reason.strip(),
            },
        )
    _retag(runtime, recording)
    return change


def _retag(runtime: Runtime, recording: Recording) -> None:
    """Customer holds follow the link: tag the object held, or back to its class."""
    retag(runtime.sessions, runtime.store, runtime.settings.retention, [recording], utcnow())
