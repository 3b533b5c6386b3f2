"""Erasure: delete every recording of a data subject now, leaving tombstones.

Recordings under a hold are not deleted: the request is registered as
pending, naming each waiting recording and the holds that keep it, and
:func:`resume_pending_erasures` erases them once no hold covers them: when a
hold is released (:func:`resume_after_hold_release`), and in every nightly
run as a safety net (:func:`resume_after_nightly_expiry`); the composition
root subscribes both to retention's events (``retention/events.py``).

Deletion works as expiry does: the recordings are first marked ``deleting``
in a transaction that re-checks the holds (so a hold placed at the same
moment either wins or is refused), the objects are deleted, and only then
do the rows become tombstones (rule ``erasure``, the officer, the request).
A call of the subject ingested while the erasure runs is erased too: the
subject's recordings are looked up again until none is left but held ones.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from recarchive.access.audit import append_event
from recarchive.access.policy import Action, require
from recarchive.access.services import Principal
from recarchive.catalogue.database import lock_for_write, transaction, utcnow
from recarchive.catalogue.models import Recording, RecordingStatus
from recarchive.errors import RecArchiveError
from recarchive.ingest.housekeeping import housekeep_safely
from recarchive.parts import Catalogue, Sessions
from recarchive.privacy.events import SUBJECT_ERASED, SubjectErased
from recarchive.privacy.models import RequestKind, RequestStatus, SubjectRequest
from recarchive.privacy.shared import NO_DECISIONS, SharedDecisions, shared_recording_ids
from recarchive.privacy.subjects import (
    Subject,
    SubjectQuery,
    find_subject,
    register_request,
    subject_condition,
)
from recarchive.retention.claims import claim, new_run_id, stale_after
from recarchive.retention.events import HoldReleased, NightlyExpiryDone
from recarchive.retention.expiry import delete_doomed
from recarchive.retention.rules import Buried, holds_covering
from recarchive.runtime import Runtime

logger = logging.getLogger(__name__)

#: Rounds of "look again" for calls that arrive while the erasure runs.
_MAX_ROUNDS = 5
_BATCH = 1000


@dataclasses.dataclass
class ErasureReport:
    request_id: uuid.UUID
    status: RequestStatus
    erased: list[uuid.UUID] = dataclasses.field(default_factory=list)
    #: recording id -> the holds keeping it (``{"hold_id", "case_ref"}``).
    waiting: dict[uuid.UUID, list[dict[str, str]]] = dataclasses.field(default_factory=dict)
    #: recording id -> why the store could not delete its object (tried again later).
    failed: dict[uuid.UUID, str] = dataclasses.field(default_factory=dict)
    #: Calls of the subject that kept arriving while the erasure ran (erased by the next run).
    arrived_later: list[uuid.UUID] = dataclasses.field(default_factory=list)
    #: The officer's decisions on calls from a shared number (see ``SharedDecisions.outcome``).
    shared: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    def outcome(self) -> dict[str, Any]:
        return {
            "erased": len(self.erased),
            "erased_ids": sorted(str(i) for i in self.erased),
            "waiting": len(self.waiting),
            "waiting_for": {str(k): v for k, v in sorted(self.waiting.items())},
            "failed": len(self.failed),
            "failures": {str(k): v for k, v in sorted(self.failed.items())},
            "arrived_later": sorted(str(i) for i in self.arrived_later),
            **self.shared,
        }

    def explain(self) -> str:
        """One paragraph for the privacy officer: what was erased, what waits, and why."""
        parts = [f"erased {len(self.erased)} recording(s)"]
        if self.waiting:
            cases = sorted({h["case_ref"] for holds in self.waiting.values() for h in holds})
            parts.append(
                f"{len(self.waiting)} recording(s) wait for the release of hold(s) on case(s) "
                f"{', '.join(cases)}; they are erased automatically when released"
            )
        if self.failed:
            parts.append(
                f"{len(self.failed)} recording(s) could not be deleted from the store "
                "and are tried again by the nightly run"
            )
        if self.arrived_later:
            parts.append(
                f"{len(self.arrived_later)} call(s) arrived while the erasure ran; "
                "the nightly run erases them"
            )
        undecided = self.shared.get("shared_undecided", [])
        if undecided:
            parts.append(
                f"{len(undecided)} call(s) from a number this customer shares with others "
                "were not erased: decide on each (include or leave out) and erase again"
            )
        return "; ".join(parts)


def _holds_of(session: Session, recording: Recording) -> list[dict[str, str]]:
    customers = [recording.customer_id, *(c.customer_id for c in recording.candidates)]
    holds = holds_covering(session, recording.id, customers, utcnow())
    return [{"hold_id": str(h.id), "case_ref": h.case_ref} for h in holds]


def _claim(
    runtime: Catalogue, session: Session, ids: list[uuid.UUID], request_id: uuid.UUID
) -> list[Buried]:
    """Claim the unheld ones of ``ids`` for deletion (the rule shared with expiry)."""
    stale = stale_after(runtime.settings.retention)
    return claim(
        session,
        ids,
        run_id=new_run_id(),
        rule="erasure",
        held_at=utcnow(),
        stale=stale,
        request_id=request_id,
    )


def _erase_ids(
    runtime: Runtime,
    ids: list[uuid.UUID],
    report: ErasureReport,
    actor: str,
) -> None:
    """Erase the unheld recordings among ``ids``; note the held ones and failures."""
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        with transaction(runtime.sessions) as session:
            lock_for_write(session)
            rows = list(
                session.scalars(select(Recording).where(Recording.id.in_(chunk)).with_for_update())
            )
            claimed = _claim(runtime, session, [r.id for r in rows], report.request_id)
            claimed_ids = {item.recording_id for item in claimed}
            for recording in rows:
                if recording.id in claimed_ids:
                    continue
                if recording.status is RecordingStatus.DELETING:  # another run is deleting it
                    report.failed[recording.id] = "being deleted by another run"
                else:
                    report.waiting[recording.id] = _holds_of(session, recording)
        if not claimed:
            continue
        gone, failed = delete_doomed(
            runtime, claimed, deleted_by=actor, request_id=report.request_id
        )
        report.erased += [item.recording_id for item in gone]
        report.failed.update(failed)
        for recording_id in report.erased:
            report.waiting.pop(recording_id, None)


def _subject_ids(runtime: Sessions, subject: Subject) -> list[uuid.UUID]:
    with runtime.sessions() as session:
        return list(
            session.scalars(
                select(Recording.id).where(
                    subject_condition(subject),
                    Recording.status.in_([RecordingStatus.ACTIVE, RecordingStatus.DELETING]),
                )
            )
        )


def erase_subject(
    runtime: Runtime,
    principal: Principal,
    query: SubjectQuery,
    *,
    note: str | None = None,
    client_addr: str | None = None,
    shared: SharedDecisions = NO_DECISIONS,
) -> ErasureReport:
    """Erase every recording of the subject now; held ones wait (request pending).

    Calls from a number the customer shares with others are erased only
    where ``shared`` includes them; the request records every decision and
    the calls still undecided.
    """
    require(principal.role, Action.SUBJECT)
    subject = find_subject(runtime, query)
    with runtime.sessions() as session:
        shared_ids = shared_recording_ids(session, subject.customer_id)
    included = shared.split(shared_ids)[0]
    report = ErasureReport(
        request_id=uuid.uuid4(), status=RequestStatus.RECEIVED, shared=shared.outcome(shared_ids)
    )
    with transaction(runtime.sessions) as session:
        request = register_request(
            session,
            kind=RequestKind.ERASURE,
            subject=subject,
            principal=principal,
            status=RequestStatus.RECEIVED,
            outcome={},
            note=note,
            client_addr=client_addr,
        )
        report.request_id = request.id
    seen: set[uuid.UUID] = set()
    for round_ in range(_MAX_ROUNDS):
        found = _subject_ids(runtime, subject) + (included if round_ == 0 else [])
        ids = [i for i in found if i not in seen]
        if not ids:
            break
        seen.update(ids)
        _erase_ids(runtime, ids, report, principal.user_name)
    report.arrived_later = [i for i in _subject_ids(runtime, subject) if i not in seen]
    _finish(runtime, report, principal.user_name, client_addr)
    if report.erased:  # the erased calls' copies in spool done_dirs go now
        housekeep_safely(runtime)
    # After the commits: the subject's training clips go at once (qa/clip_purge.py).
    touched = tuple(dict.fromkeys([*report.erased, *report.waiting, *report.failed]))
    SUBJECT_ERASED.publish(
        SubjectErased(runtime, subject.customer_id, touched, principal.user_name)
    )
    logger.info(
        "subject_erasure",
        extra={
            "request_id": str(report.request_id),
            "erased": len(report.erased),
            "waiting": len(report.waiting),
            "failed": len(report.failed),
        },
    )
    return report


def _finish(runtime: Sessions, report: ErasureReport, actor: str, client_addr: str | None) -> None:
    pending = bool(report.waiting or report.failed or report.arrived_later)
    report.status = RequestStatus.PENDING if pending else RequestStatus.COMPLETED
    outcome = report.outcome()
    with transaction(runtime.sessions) as session:
        request = session.get_one(SubjectRequest, report.request_id, with_for_update=True)
        previous = request.outcome or {}
        if previous.get("erased_ids"):  # resumed: keep what earlier rounds erased
            outcome["erased_ids"] = sorted(set(previous["erased_ids"]) | set(outcome["erased_ids"]))
            outcome["erased"] = len(outcome["erased_ids"])
        request.outcome = outcome
        request.status = report.status
        if not pending:
            request.completed_at = utcnow()
        append_event(
            session,
            actor=actor,
            action="subject.erasure.progress",
            client_addr=client_addr,
            details={
                "request_id": str(report.request_id),
                "status": report.status.value,
                "erased": len(report.erased),
                "waiting": len(report.waiting),
                "failed": len(report.failed),
            },
        )


def resume_pending_erasures(runtime: Runtime) -> list[ErasureReport]:
    """Erase what pending erasure requests wait for, where no hold covers it any more."""
    with runtime.sessions() as session:
        pending = list(
            session.scalars(
                select(SubjectRequest).where(
                    SubjectRequest.kind == RequestKind.ERASURE,
                    SubjectRequest.status == RequestStatus.PENDING,
                )
            )
        )
    reports = []
    for request in pending:
        outcome = request.outcome or {}
        waiting = [uuid.UUID(i) for i in outcome.get("waiting_for", {})]
        waiting += [uuid.UUID(i) for i in outcome.get("failures", {})]
        waiting += [uuid.UUID(i) for i in outcome.get("arrived_later", [])]
        report = ErasureReport(request_id=request.id, status=request.status)
        if waiting:
            _erase_ids(runtime, waiting, report, "system")
        if report.erased or not waiting or not report.waiting:
            _finish(runtime, report, "system", None)
            reports.append(report)
        if report.erased:
            event = SubjectErased(runtime, request.customer_id, tuple(report.erased), "system")
            SUBJECT_ERASED.publish(event)
    if any(report.erased for report in reports):  # their copies in spool done_dirs go now
        housekeep_safely(runtime)
    return reports


def resume_after_hold_release(event: HoldReleased) -> None:
    """A hold was released: the erasure requests waiting for it finish now.

    A failure is logged and left to the nightly run; the release stands.
    """
    try:
        resume_pending_erasures(event.runtime)
    except RecArchiveError as exc:
        logger.warning("pending_erasures_not_resumed", extra={"error": exc.message})


def resume_after_nightly_expiry(event: NightlyExpiryDone) -> dict[str, int]:
    """The nightly run's safety net: finish every pending erasure no hold keeps any more."""
    erasures = resume_pending_erasures(event.runtime)
    return {"erasures_resumed": sum(len(e.erased) for e in erasures)}
