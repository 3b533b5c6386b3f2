"""Dispute cases: open, list, show, note, assign, close (docs/disputes.md).

A case gathers the recordings a billing or contract dispute turns on
(linked in :mod:`recarchive.disputes.linking`). While it is open its
recordings are held by one hold of its own (``Hold.case_id``); closing it
needs a reason and releases that hold only, so a recording another case or
hold keeps stays held. A closed case's record is kept for
``disputes.keep_closed_years`` and then deleted by the nightly job
(:mod:`recarchive.disputes.keeping`).

Every use case takes the :class:`~recarchive.access.actors.Actor` it acts
for and checks the role first (``case.view`` to read, ``case.manage`` to
change), so a refusal says nothing about the case asked for. Every change
is audited in its own transaction (``case.open``, ``case.note``,
``case.assign``, ``case.close``), reading a case is audited too
(``case.view``); each entry's ``case_ref`` is the case's reference and its
details hold ids, counts and reasons, never the customer or a note's text.
Cases are named by id (the API) or by reference (the shell).
"""

from __future__ import annotations

import calendar
import datetime as dt
import unicodedata
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError as DatabaseIntegrityError
from sqlalchemy.orm import Session, selectinload

from recarchive.access.actors import Actor
from recarchive.access.audit import AuditEntry, append_event
from recarchive.access.models import Role, User
from recarchive.access.policy import Action
from recarchive.catalogue.database import lock_for_write, transaction, utcnow
from recarchive.catalogue.models import Customer
from recarchive.disputes.models import Case, CaseKind, CaseNote, CaseStatus
from recarchive.disputes.views import CaseDetail, CaseSummary, detail_of, summaries
from recarchive.errors import ConflictError, InvalidInputError, NotFoundError
from recarchive.parts import Sessions
from recarchive.retention.holds import release_hold
from recarchive.retention.models import Hold
from recarchive.runtime import Runtime

#: Roles a case may be handed to.
HANDLER_ROLES = frozenset({Role.DISPUTE_HANDLER, Role.PRIVACY_OFFICER})
MAX_REFERENCE = 128
MAX_NOTE = 20_000
MAX_REASON = 2_000

#: A case named by its id (the API) or its reference (the shell).
CaseKey = uuid.UUID | str


class CaseInputError(InvalidInputError):
    """a field of the dispute case is not valid"""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class CaseNotFound(NotFoundError):
    """no such dispute case"""


class CaseConflict(ConflictError):
    """the dispute case cannot be changed so"""


class CaseChanged(CaseConflict):
    """the dispute case changed meanwhile (another change placed or released its hold); try again"""


# --- input ----------------------------------------------------------------------


def _has_control(text: str, *, lines: bool = False) -> bool:
    allowed = "\t\n\r" if lines else ""
    return any(unicodedata.category(c) == "Cc" and c not in allowed for c in text)


def check_text(field: str, value: str | None, limit: int, *, lines: bool = False) -> str:
    """``value`` trimmed: 1 to ``limit`` characters, no control characters (but line breaks
    where ``lines``); :class:`CaseInputError` naming ``field`` otherwise."""
    text = (value or "").strip()
    if not text:
        raise CaseInputError(field, "must not be empty")
    if len(text) > limit:
        raise CaseInputError(field, f"must be at most {limit} characters")
    if _has_control(text, lines=lines):
        raise CaseInputError(field, "control characters are not allowed")
    return text


def _optional(field: str, value: str | None, limit: int) -> str | None:
    return check_text(field, value, limit) if value is not None and value.strip() else None


def _kind(value: str | CaseKind) -> CaseKind:
    try:
        return CaseKind(value)
    except ValueError:
        known = ", ".join(k.value for k in CaseKind)
        raise CaseInputError("kind", f"must be one of {known}") from None


def _handler(session: Session, name: str) -> str:
    """A user who may handle cases; :class:`CaseInputError` naming ``handler`` otherwise."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None or user.disabled_at is not None:
        raise CaseInputError("handler", f"no enabled user {name!r}")
    if user.role not in HANDLER_ROLES:
        raise CaseInputError(
            "handler", f"user {name!r} is a {user.role.value}: cases go to dispute handlers "
            "and privacy officers"
        )  # fmt: skip
    return user.name


def add_years(moment: dt.datetime, years: int) -> dt.datetime:
    """``moment`` plus calendar years; 29 February becomes 28 February in a common year."""
    year = moment.year + years
    day = min(moment.day, calendar.monthrange(year, moment.month)[1])
    return moment.replace(year=year, day=day)


# --- loading and auditing ---------------------------------------------------------


def load_case(session: Session, key: CaseKey, *, lock: bool = False) -> Case:
    """The case with that id or reference; :class:`CaseNotFound` otherwise."""
    if isinstance(key, uuid.UUID):
        statement = select(Case).where(Case.id == key)
        label = str(key)
    else:
        statement = select(Case).where(Case.reference == key.strip())
        label = key.strip()[:MAX_REFERENCE]
    if lock:
        statement = statement.with_for_update()
    case = session.scalar(statement)
    if case is None:
        raise CaseNotFound(f"no dispute case {label}")
    return case


def require_open(case: Case) -> None:
    """:class:`CaseConflict` when the case is closed: its record no longer changes."""
    if case.status is CaseStatus.CLOSED:
        assert case.closed_at is not None
        raise CaseConflict(
            f"case {case.reference} was closed at {case.closed_at.isoformat()} "
            f"by {case.closed_by}: it no longer changes"
        )


def audit_change(
    session: Session,
    case: Case,
    actor: Actor,
    action: str,
    details: dict[str, Any] | None = None,
    *,
    recording_id: uuid.UUID | None = None,
) -> None:
    """Append ``action`` about ``case`` in the change's own transaction."""
    append_event(
        session,
        actor=actor.name,
        actor_role=actor.role_name,
        action=action,
        recording_id=recording_id,
        case_ref=case.reference,
        client_addr=actor.client_addr,
        details={"case_id": str(case.id), **(details or {})},
    )


def _detail(runtime: Sessions, case_id: uuid.UUID) -> CaseDetail:
    with runtime.sessions() as session:
        return detail_of(session, load_case(session, case_id), utcnow())


def case_detail(runtime: Sessions, key: CaseKey, *, actor: Actor) -> CaseDetail:
    """The case as it stands after a change by ``actor`` (audited by the change itself)."""
    actor.require(Action.CASE_VIEW)
    with runtime.sessions() as session:
        return detail_of(session, load_case(session, key), utcnow())


# --- use cases --------------------------------------------------------------------


def open_case(
    runtime: Sessions,
    *,
    reference: str,
    kind: str | CaseKind,
    actor: Actor,
    customer_id: str | None = None,
    document_ref: str | None = None,
    handler: str | None = None,
) -> CaseDetail:
    """Open a case (audited ``case.open``); the handler defaults to ``actor``.

    :class:`CaseInputError` for a bad field, an unknown customer or a handler
    who may not handle cases; :class:`CaseConflict` when the reference is taken.
    """
    actor.require(Action.CASE_MANAGE)
    ref = check_text("reference", reference, MAX_REFERENCE)
    parsed_kind = _kind(kind)
    customer = _optional("customer_id", customer_id, 64)
    document = _optional("document_ref", document_ref, 128)
    try:
        with transaction(runtime.sessions) as session:
            lock_for_write(session)
            if session.scalar(select(Case.id).where(Case.reference == ref)) is not None:
                raise CaseConflict(f"reference {ref} is taken by another case")
            if customer is not None and session.get(Customer, customer) is None:
                raise CaseInputError("customer_id", "no customer has that id in the catalogue")
            case = Case(
                id=uuid.uuid4(),
                reference=ref,
                kind=parsed_kind,
                customer_id=customer,
                document_ref=document,
                status=CaseStatus.OPEN,
                handler=_handler(session, handler.strip() if handler else actor.name),
                opened_by=actor.name,
                opened_at=utcnow(),
            )
            session.add(case)
            session.flush()
            audit_change(
                session,
                case,
                actor,
                "case.open",
                {"kind": case.kind.value, "customer": customer is not None},
            )
    except DatabaseIntegrityError:  # the same reference, opened at the same moment
        raise CaseConflict(f"reference {ref} is taken by another case") from None
    return _detail(runtime, case.id)


def list_cases(runtime: Sessions, *, actor: Actor, status: str = "open") -> list[CaseSummary]:
    """Cases (``open``, ``closed`` or ``all``), newest first."""
    actor.require(Action.CASE_VIEW)
    if status not in ("open", "closed", "all"):
        raise CaseInputError("status", "must be open, closed or all")
    statement = select(Case).order_by(Case.opened_at.desc(), Case.id)
    if status != "all":
        statement = statement.where(Case.status == CaseStatus(status))
    with runtime.sessions() as session:
        return summaries(session, list(session.scalars(statement)))


def show_case(runtime: Runtime, key: CaseKey, *, actor: Actor) -> CaseDetail:
    """The whole case: its recordings, hold, notes and exports (audited ``case.view``)."""
    actor.require(Action.CASE_VIEW)
    with runtime.sessions() as session:
        case = session.scalar(
            select(Case)
            .where(Case.id == load_case(session, key).id)
            .options(selectinload(Case.recordings), selectinload(Case.notes))
        )
        assert case is not None
        detail = detail_of(session, case, utcnow())
    runtime.audit.record(
        AuditEntry(
            actor=actor.name,
            actor_role=actor.role_name,
            action="case.view",
            case_ref=detail.reference,
            client_addr=actor.client_addr,
            details={"case_id": str(detail.id), "recordings": len(detail.recordings)},
        )
    )
    return detail


def add_note(runtime: Sessions, key: CaseKey, text: str, *, actor: Actor) -> CaseDetail:
    """Add a note to an open case (audited ``case.note``; the text stays out of the log)."""
    actor.require(Action.CASE_MANAGE)
    body = check_text("text", text, MAX_NOTE, lines=True)
    with transaction(runtime.sessions) as session:
        lock_for_write(session)
        case = load_case(session, key, lock=True)
        require_open(case)
        note = CaseNote(id=uuid.uuid4(), case_id=case.id, author=actor.name, at=utcnow(), text=body)
        session.add(note)
        session.flush()
        audit_change(session, case, actor, "case.note", {"note_id": str(note.id)})
        case_id = case.id
    return _detail(runtime, case_id)


def assign(runtime: Sessions, key: CaseKey, handler: str, *, actor: Actor) -> CaseDetail:
    """Hand an open case to a dispute handler or privacy officer (audited ``case.assign``)."""
    actor.require(Action.CASE_MANAGE)
    name = check_text("handler", handler, 128)
    with transaction(runtime.sessions) as session:
        lock_for_write(session)
        case = load_case(session, key, lock=True)
        require_open(case)
        previous, case.handler = case.handler, _handler(session, name)
        audit_change(
            session, case, actor, "case.assign", {"handler": case.handler, "previous": previous}
        )
        case_id = case.id
    return _detail(runtime, case_id)


def close_case(
    runtime: Runtime, key: CaseKey, *, reason: str, actor: Actor, now: dt.datetime | None = None
) -> CaseDetail:
    """Close a case (audited ``case.close``) and release its own hold, no other.

    A recording another case or hold covers stays held (and keeps its held
    tag); the others are freed (expiry deletes them if due, a pending
    erasure resumes). The record is kept until ``delete_after``:
    ``disputes.keep_closed_years`` calendar years after closing.
    :class:`CaseConflict` when it is closed already.
    """
    actor.require(Action.CASE_MANAGE)
    why = check_text("reason", reason, MAX_REASON, lines=True)
    closed_at = now or utcnow()
    years = runtime.settings.disputes.keep_closed_years
    with runtime.sessions() as session:
        found = load_case(session, key)
        require_open(found)
        case_id, hold_id = found.id, found.hold_id

    def close(session: Session, hold: Hold | None) -> None:
        case = load_case(session, case_id, lock=True)
        require_open(case)
        if case.hold_id != (hold.id if hold else None):
            raise CaseChanged(f"case {case.reference} changed meanwhile; try again")
        case.status = CaseStatus.CLOSED
        case.closed_at, case.closed_by, case.close_reason = closed_at, actor.name, why
        case.delete_after = add_years(closed_at, years)
        audit_change(
            session,
            case,
            actor,
            "case.close",
            {"reason": why, "hold_id": str(hold.id) if hold else None},
        )

    if hold_id is None:
        with transaction(runtime.sessions) as session:
            lock_for_write(session)
            close(session, None)
    else:
        release_hold(
            runtime,
            hold_id,
            actor=actor,
            reason=f"dispute case closed: {why}",
            case_release=True,
            also=close,
        )
    return _detail(runtime, case_id)
