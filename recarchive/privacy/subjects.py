"""Finding a data subject and what the archive holds about them; the request register.

A subject is found by customer id, by phone number (any spelling) or by
identity code (through its keyed hash). A number or identity code that
matches several customers is refused with the candidates' ids, so that the
privacy officer names the exact customer. A number that matches no customer
but appears on calls finds an unlinked caller: their recordings are the
ones from that number that no customer is linked to.

Every request is registered (:class:`~recarchive.privacy.models.SubjectRequest`)
with a subject reference that never holds a number or identity code in
clear: the customer id, or ``number:`` and a keyed hash of the number.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from recarchive.access.audit import append_event
from recarchive.access.services import Principal
from recarchive.catalogue.database import transaction, utcnow
from recarchive.catalogue.identity import (
    IdentifierError,
    hash_identity_code,
    normalise_phone,
    number_ref,
    phone_hash,
)
from recarchive.catalogue.models import (
    Customer,
    CustomerPhone,
    Direction,
    Recording,
    RecordingStatus,
)
from recarchive.catalogue.restrictions import ProcessingRestriction
from recarchive.errors import ConflictError, InvalidInputError, NotFoundError
from recarchive.parts import Catalogue, Sessions
from recarchive.privacy.models import RequestKind, RequestStatus, SubjectRequest
from recarchive.privacy.shared import shared_calls
from recarchive.retention.rules import held_condition


class SubjectError(InvalidInputError):
    """the data subject cannot be identified"""

    field = "subject"


class SubjectNotFound(NotFoundError, SubjectError):
    """the archive holds nothing about this subject"""


class AmbiguousSubject(ConflictError, SubjectError):
    """several customers match; name the exact customer"""

    code = "ambiguous_subject"

    def __init__(self, what: str, candidates: list[str]) -> None:
        super().__init__(
            f"the {what} matches {len(candidates)} customers ({', '.join(candidates)}); "
            "give the exact customer id"
        )
        self.candidates = candidates

    def details(self) -> dict[str, Any]:
        return {"candidates": self.candidates}


@dataclasses.dataclass(frozen=True)
class SubjectQuery:
    """How the privacy officer names the person: exactly one of the three."""

    customer_id: str | None = None
    number: str | None = None
    identity_code: str | None = dataclasses.field(default=None, repr=False)

    def check(self) -> SubjectQuery:
        """The query with blank fields dropped and the rest stripped; exactly one must remain."""
        fields = [
            value.strip() if value and value.strip() else None
            for value in (self.customer_id, self.number, self.identity_code)
        ]
        if sum(value is not None for value in fields) != 1:
            raise SubjectError(
                "name the subject by exactly one of customer id, number, identity code"
            )
        return SubjectQuery(*fields)


@dataclasses.dataclass(frozen=True)
class Subject:
    """A found subject: a customer, or an unlinked caller known by their number."""

    #: Stored in requests: the customer id, or ``number:<keyed hash>``.
    ref: str
    customer_id: str | None
    #: E.164; set for an unlinked caller only (a customer's numbers are in the directory).
    number: str | None = dataclasses.field(default=None, repr=False)

    def label(self) -> str:
        return f"customer {self.customer_id}" if self.customer_id else "an unlinked caller"


def find_subject(runtime: Catalogue, query: SubjectQuery) -> Subject:
    """The subject named by ``query``; :class:`SubjectNotFound`, :class:`AmbiguousSubject`."""
    query = query.check()
    settings = runtime.settings
    with runtime.sessions() as session:
        if query.customer_id:
            customer_id = query.customer_id.strip()
            known = session.get(Customer, customer_id) is not None
            if not known and not session.scalar(
                select(func.count()).where(Recording.customer_id == customer_id)
            ):
                raise SubjectNotFound(f"no customer {customer_id!r} and no recordings linked to it")
            return Subject(ref=customer_id, customer_id=customer_id)
        key = settings.secret("identity_hash_key") or ""
        if query.identity_code:
            try:
                digest = hash_identity_code(query.identity_code, key)[1]
            except IdentifierError as exc:
                raise SubjectError(f"identity code: {exc.message}") from None
            ids = list(
                session.scalars(
                    select(Customer.customer_id)
                    .where(Customer.identity_hash == digest)
                    .order_by(Customer.customer_id)
                )
            )
            return _one(ids, "identity code")
        try:
            e164 = normalise_phone(query.number or "", region=settings.ingest.default_region)
        except IdentifierError as exc:
            raise SubjectError(f"number: {exc.message}") from None
        ids = list(
            session.scalars(
                select(CustomerPhone.customer_id)
                .where(CustomerPhone.phone_hash == phone_hash(e164, key))
                .distinct()
                .order_by(CustomerPhone.customer_id)
            )
        )
        if ids:
            return _one(ids, "number")
        if session.scalar(select(func.count()).where(_unlinked_number(e164))):
            return Subject(ref=number_ref(e164, key), customer_id=None, number=e164)
        raise SubjectNotFound("no customer has this number and no recording comes from it")


def _one(ids: list[str], what: str) -> Subject:
    if not ids:
        raise SubjectNotFound(f"no customer has this {what}")
    if len(ids) > 1:
        raise AmbiguousSubject(what, ids)
    return Subject(ref=ids[0], customer_id=ids[0])


def _unlinked_number(e164: str) -> ColumnElement[bool]:
    return and_(
        Recording.customer_id.is_(None),
        or_(Recording.caller_number == e164, Recording.called_number == e164),
    )


def subject_condition(subject: Subject) -> ColumnElement[bool]:
    """SQL: the recording belongs to ``subject``."""
    if subject.customer_id is not None:
        return Recording.customer_id == subject.customer_id
    assert subject.number is not None
    return _unlinked_number(subject.number)


def subject_recordings(session: Session, subject: Subject) -> list[Recording]:
    return list(
        session.scalars(
            select(Recording)
            .where(subject_condition(subject), Recording.status == RecordingStatus.ACTIVE)
            .order_by(Recording.started_at)
        )
    )


@dataclasses.dataclass(frozen=True)
class SubjectOverview:
    subject: Subject
    name: str | None
    numbers: list[str]
    recordings: int
    first_call: dt.datetime | None
    last_call: dt.datetime | None
    held: int
    restrictions: list[dict[str, Any]]
    requests: list[dict[str, Any]]
    #: Calls from a number shared with other customers: id, start, other candidates.
    shared: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "subject_ref": self.subject.ref,
            "customer_id": self.subject.customer_id,
            "name": self.name,
            "numbers": self.numbers,
            "recordings": self.recordings,
            "first_call": self.first_call.isoformat() if self.first_call else None,
            "last_call": self.last_call.isoformat() if self.last_call else None,
            "held": self.held,
            "restrictions": self.restrictions,
            "requests": self.requests,
            "shared_calls": self.shared,
        }


def restriction_dict(restriction: ProcessingRestriction) -> dict[str, Any]:
    return {
        "id": str(restriction.id),
        "kind": restriction.kind.value,
        "customer_id": restriction.customer_id,
        "recording_id": str(restriction.recording_id) if restriction.recording_id else None,
        "number": restriction.number,
        "allowed_purpose": restriction.allowed_purpose,
        "case_ref": restriction.case_ref,
        "created_at": restriction.created_at.isoformat(),
        "created_by": restriction.created_by,
        "lifted_at": restriction.lifted_at.isoformat() if restriction.lifted_at else None,
    }


def request_dict(request: SubjectRequest) -> dict[str, Any]:
    return {
        "id": str(request.id),
        "kind": request.kind.value,
        "subject_ref": request.subject_ref,
        "customer_id": request.customer_id,
        "status": request.status.value,
        "handled_by": request.handled_by,
        "received_at": request.received_at.isoformat(),
        "completed_at": request.completed_at.isoformat() if request.completed_at else None,
        "outcome": request.outcome,
        "note": request.note,
    }


def show_subject(
    runtime: Catalogue, principal: Principal, query: SubjectQuery, *, client_addr: str | None = None
) -> SubjectOverview:
    """What the archive holds about the subject (audited as ``subject.show``)."""
    from recarchive.access.policy import Action, require

    require(principal.role, Action.SUBJECT)
    subject = find_subject(runtime, query)
    now = utcnow()
    with transaction(runtime.sessions) as session:
        condition = and_(subject_condition(subject), Recording.status == RecordingStatus.ACTIVE)
        count, first, last = session.execute(
            select(func.count(), func.min(Recording.started_at), func.max(Recording.started_at))
            .select_from(Recording)
            .where(condition)
        ).one()
        held = session.scalar(select(func.count()).where(condition, held_condition(now))) or 0
        name, numbers = None, [subject.number] if subject.number else []
        if subject.customer_id is not None:
            customer = session.get(Customer, subject.customer_id)
            name = customer.name if customer is not None else None
            numbers = customer_numbers(session, subject.customer_id)
        restrictions = subject_restrictions(session, subject)
        shared = shared_calls(session, subject.customer_id)
        requests = list(
            session.scalars(
                select(SubjectRequest)
                .where(SubjectRequest.subject_ref == subject.ref)
                .order_by(SubjectRequest.received_at)
            )
        )
        append_event(
            session,
            actor=principal.user_name,
            actor_role=principal.role.value,
            action="subject.show",
            client_addr=client_addr,
            details={
                "subject_ref": subject.ref,
                "recordings": int(count),
                "shared_calls": len(shared),
            },
        )
        return SubjectOverview(
            subject=subject,
            name=name,
            numbers=numbers,
            recordings=int(count),
            first_call=first,
            last_call=last,
            held=int(held),
            restrictions=[restriction_dict(r) for r in restrictions],
            requests=[request_dict(r) for r in requests],
            shared=shared,
        )


def customer_numbers(session: Session, customer_id: str) -> list[str]:
    """The customer's numbers as their calls show them (the directory keeps only hashes).

    The customer's side of each call: the caller of an inbound call, the
    called number of an outbound one.
    """
    rows = session.execute(
        select(Recording.direction, Recording.caller_number, Recording.called_number).where(
            Recording.customer_id == customer_id, Recording.status == RecordingStatus.ACTIVE
        )
    ).all()
    numbers = {
        called if direction is Direction.OUTBOUND else caller for direction, caller, called in rows
    }
    return sorted(n for n in numbers if n)


def subject_restrictions(session: Session, subject: Subject) -> list[ProcessingRestriction]:
    """Restrictions and objections on the subject as a whole or on any of their recordings."""
    ids = select(Recording.id).where(subject_condition(subject)).scalar_subquery()
    conditions: list[ColumnElement[bool]] = [ProcessingRestriction.recording_id.in_(ids)]
    if subject.customer_id is not None:
        conditions.append(ProcessingRestriction.customer_id == subject.customer_id)
    if subject.number is not None:
        conditions.append(ProcessingRestriction.number_ref == subject.ref)
    return list(
        session.scalars(
            select(ProcessingRestriction)
            .where(or_(*conditions))
            .order_by(ProcessingRestriction.created_at)
        )
    )


def register_request(
    session: Session,
    *,
    kind: RequestKind,
    subject: Subject,
    principal: Principal,
    status: RequestStatus,
    outcome: dict[str, Any],
    note: str | None = None,
    client_addr: str | None = None,
    request_id: uuid.UUID | None = None,
) -> SubjectRequest:
    """Record a request and what was done, with its audit entry, in the caller's transaction."""
    now = utcnow()
    request = SubjectRequest(
        id=request_id or uuid.uuid4(),
        kind=kind,
        subject_ref=subject.ref,
        customer_id=subject.customer_id,
        status=status,
        handled_by=principal.user_name,
        received_at=now,
        completed_at=now if status is RequestStatus.COMPLETED else None,
        outcome=outcome,
        note=note,
    )
    session.add(request)
    session.flush()
    append_event(
        session,
        actor=principal.user_name,
        actor_role=principal.role.value,
        action=f"subject.{kind.value}",
        client_addr=client_addr,
        details={
            "request_id": str(request.id),
            "subject_ref": subject.ref,
            "status": status.value,
            **{k: v for k, v in outcome.items() if isinstance(v, int | str | bool)},
        },
    )
    return request


def list_requests(
    runtime: Sessions,
    *,
    kind: RequestKind | None = None,
    status: RequestStatus | None = None,
    subject_ref: str | None = None,
) -> list[SubjectRequest]:
    """Registered requests, newest first."""
    statement = select(SubjectRequest).order_by(SubjectRequest.received_at.desc())
    if kind is not None:
        statement = statement.where(SubjectRequest.kind == kind)
    if status is not None:
        statement = statement.where(SubjectRequest.status == status)
    if subject_ref is not None:
        statement = statement.where(SubjectRequest.subject_ref == subject_ref)
    with runtime.sessions() as session:
        return list(session.scalars(statement))
