"""Evaluations: a QA trainer scores one call against one scorecard form version.

- The call must be one a QA trainer may know of
  (:func:`recarchive.privacy.visibility.visible_condition`: never objected
  to or restricted), active and within its retention; otherwise the answer
  is the lookup's :class:`~recarchive.lookup.views.NotFound`, the same as
  for an id nobody has, so a refusal never says that the call exists.
- The answers are checked against the form version
  (:func:`recarchive.qa.scoring.check_answers`) and the score is computed
  here (:func:`recarchive.qa.scoring.score`), never taken from the client.
- Every change is a new :class:`~recarchive.qa.models.EvaluationVersion`;
  the one before is kept, marked superseded (by whom, when). The
  evaluation keeps its form version when the form gets a new one.
- A draft becomes ``submitted`` once (``submit``); later changes stay
  submitted, and a change after the agent acknowledged it, or after a
  trainer answered their dispute, makes it ``submitted`` again: the new
  version needs a new acknowledgement. A disputed evaluation stays
  ``disputed`` until a trainer answers (:mod:`recarchive.qa.agent_reviews`).
  Audited: ``qa.evaluation.save`` for every version,
  ``qa.evaluation.submit`` when submitted, ``qa.evaluation.view`` for reads;
  ids, versions and counts only, never answers or scores.

The call's agent, queue and start are copied onto the evaluation: it is
kept after the call expires (docs/privacy.md), until
:mod:`recarchive.qa.keeping` deletes it.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from recarchive.access.actors import Actor
from recarchive.access.audit import append_event
from recarchive.access.policy import Action
from recarchive.catalogue.database import lock_for_write, transaction, utcnow
from recarchive.catalogue.models import Recording
from recarchive.errors import NotFoundError
from recarchive.lookup.views import NotFound as RecordingNotFound
from recarchive.parts import Sessions
from recarchive.qa.calls import usable_call
from recarchive.qa.evaluation_notes import notes_of
from recarchive.qa.models import (
    Evaluation,
    EvaluationStatus,
    EvaluationVersion,
    Form,
    FormVersion,
)
from recarchive.qa.scoring import check_answers, parse_definition, score

__all__ = [
    "EvaluationNotFound",
    "EvaluationView",
    "FormVersionNotFound",
    "create_evaluation",
    "evaluation_view",
    "get_evaluation",
    "list_evaluations",
    "next_status",
    "revise_evaluation",
]

#: The most evaluations one listing returns (newest first).
LIST_LIMIT = 500
#: What a view of an evaluation reads with it.
LOAD_VIEW = (selectinload(Evaluation.versions), selectinload(Evaluation.responses))


class EvaluationNotFound(NotFoundError):
    """no such evaluation"""


class FormVersionNotFound(NotFoundError):
    """no such scorecard form version"""


@dataclasses.dataclass(frozen=True)
class EvaluationView:
    """An evaluation with its versions (oldest first) and the form it was made with."""

    evaluation: Evaluation
    form_id: uuid.UUID
    form_name: str
    form_version: int
    #: The notes that belong to it (:mod:`recarchive.qa.evaluation_notes`), by offset.
    notes: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        evaluation = self.evaluation
        current = self.current
        return {
            "id": str(evaluation.id),
            "recording_id": str(evaluation.recording_id),
            "agent": evaluation.agent,
            "queue": evaluation.queue,
            "started_at": evaluation.started_at.isoformat(),
            "form": {
                "id": str(self.form_id),
                "name": self.form_name,
                "version": self.form_version,
                "version_id": str(evaluation.form_version_id),
            },
            "status": evaluation.status.value,
            "version": evaluation.current_version,
            "score": current.score,
            "sections": current.sections,
            "critical_failed": list(current.critical_failed),
            "answers": current.answers,
            "notes": list(self.notes),
            "created_by": evaluation.created_by,
            "created_at": evaluation.created_at.isoformat(),
            "updated_by": current.saved_by,
            "updated_at": evaluation.updated_at.isoformat(),
            "responses": self.responses(),
        }

    def responses(self) -> list[dict[str, Any]]:
        """The agent's acknowledgements and dispute and the trainer's answer, oldest first."""
        return [
            {
                "kind": r.kind.value,
                "version": r.version,
                "comment": r.comment,
                "by": r.by,
                "at": r.at.isoformat(),
            }
            for r in sorted(self.evaluation.responses, key=lambda r: (r.at, r.kind.value))
        ]

    @property
    def current(self) -> EvaluationVersion:
        return next(
            v for v in self.evaluation.versions if v.version == self.evaluation.current_version
        )

    def versions(self) -> list[dict[str, Any]]:
        return [
            {
                "version": v.version,
                "status": v.status.value,
                "answers": v.answers,
                "score": v.score,
                "sections": v.sections,
                "critical_failed": list(v.critical_failed),
                "saved_by": v.saved_by,
                "saved_at": v.saved_at.isoformat(),
                "superseded": v.superseded_at is not None,
                "superseded_by": v.superseded_by,
                "superseded_at": v.superseded_at.isoformat() if v.superseded_at else None,
            }
            for v in sorted(self.evaluation.versions, key=lambda v: v.version)
        ]


def _visible_call(session: Session, recording_id: uuid.UUID, actor: Actor) -> Recording:
    """The call, if the trainer may know of it and it is still kept; else "no recording"."""
    recording = usable_call(session, recording_id, utcnow())
    if recording is None:
        raise RecordingNotFound(f"no recording {recording_id}")
    return recording


def next_status(before: EvaluationStatus | None, submit: bool) -> EvaluationStatus:
    """The status after a trainer saves a version (``submit``: they submit it)."""
    if before is None or before is EvaluationStatus.DRAFT:
        return EvaluationStatus.SUBMITTED if submit else EvaluationStatus.DRAFT
    if before is EvaluationStatus.DISPUTED:
        return before  # still the trainer's to answer
    return EvaluationStatus.SUBMITTED


def _new_version(
    session: Session,
    evaluation: Evaluation,
    form_version: FormVersion,
    answers: Any,
    submit: bool,
    actor: Actor,
) -> EvaluationVersion:
    definition = parse_definition(form_version.definition)
    checked = check_answers(definition, answers)
    result = score(definition, checked)
    now = utcnow()
    before = evaluation.status
    status = next_status(before, submit)
    number = (evaluation.current_version or 0) + 1
    for old in evaluation.versions:
        if old.superseded_at is None:
            old.superseded_at, old.superseded_by = now, actor.name
    version = EvaluationVersion(
        evaluation=evaluation,
        version=number,
        status=EvaluationStatus.DRAFT
        if status is EvaluationStatus.DRAFT
        else EvaluationStatus.SUBMITTED,
        answers=checked,
        score=result.total,
        sections=dict(result.sections),
        critical_failed=list(result.critical_failed),
        saved_by=actor.name,
        saved_at=now,
    )
    session.add(version)
    evaluation.current_version, evaluation.status = number, status
    evaluation.score, evaluation.updated_at = result.total, now
    session.flush()
    details = {
        "evaluation_id": str(evaluation.id),
        "version": number,
        "form_version_id": str(form_version.id),
        "status": status.value,
        "answers": len(checked),
    }
    for action, due in (
        ("qa.evaluation.save", True),
        ("qa.evaluation.submit", status is EvaluationStatus.SUBMITTED and before != status),
    ):
        if due:
            append_event(
                session,
                actor=actor.name,
                actor_role=actor.role_name,
                action=action,
                recording_id=evaluation.recording_id,
                client_addr=actor.client_addr,
                details=details,
            )
    return version


def create_evaluation(
    runtime: Sessions,
    *,
    recording_id: uuid.UUID,
    form_version_id: uuid.UUID,
    answers: Any,
    submit: bool = False,
    actor: Actor,
) -> EvaluationView:
    """Score the call against the form version: a new evaluation (version 1)."""
    actor.require(Action.QA_EVALUATE)
    with transaction(runtime.sessions) as session:
        lock_for_write(session)
        recording = _visible_call(session, recording_id, actor)
        form_version = session.get(FormVersion, form_version_id)
        if form_version is None:
            raise FormVersionNotFound(f"no scorecard form version {form_version_id}")
        evaluation = Evaluation(
            recording_id=recording.id,
            agent=recording.agent,
            queue=recording.queue,
            started_at=recording.started_at,
            form_version_id=form_version.id,
            current_version=0,
            created_by=actor.name,
        )
        session.add(evaluation)
        _new_version(session, evaluation, form_version, answers, submit, actor)
        evaluation_id = evaluation.id
    return _read(runtime, evaluation_id)


def revise_evaluation(
    runtime: Sessions,
    evaluation_id: uuid.UUID,
    *,
    answers: Any,
    submit: bool = False,
    actor: Actor,
) -> EvaluationView:
    """The evaluation's next version, against the same form version; the last is superseded.

    The call must still be one the trainer may know of and still kept: a
    call objected to, restricted or expired since is never scored again
    (its evaluation is kept as it stands, and can be read).
    """
    actor.require(Action.QA_EVALUATE)
    with transaction(runtime.sessions) as session:
        lock_for_write(session)
        evaluation = session.scalar(
            select(Evaluation)
            .where(Evaluation.id == evaluation_id)
            .options(selectinload(Evaluation.versions), selectinload(Evaluation.responses))
            .with_for_update()
        )
        if evaluation is None:
            raise EvaluationNotFound(f"no evaluation {evaluation_id}")
        _visible_call(session, evaluation.recording_id, actor)
        form_version = session.get(FormVersion, evaluation.form_version_id)
        assert form_version is not None  # a foreign key, and versions are never deleted alone
        _new_version(session, evaluation, form_version, answers, submit, actor)
    return _read(runtime, evaluation_id)


def evaluation_view(session: Session, evaluation: Evaluation) -> EvaluationView:
    """The view of an evaluation loaded with :data:`LOAD_VIEW`."""
    row = session.execute(
        select(Form.id, Form.name, FormVersion.version)
        .join(FormVersion, FormVersion.form_id == Form.id)
        .where(FormVersion.id == evaluation.form_version_id)
    ).one()
    return EvaluationView(evaluation, row[0], row[1], row[2], notes_of(session, evaluation.id))


def _read(runtime: Sessions, evaluation_id: uuid.UUID) -> EvaluationView:
    with runtime.sessions() as session:
        evaluation = session.scalar(
            select(Evaluation).where(Evaluation.id == evaluation_id).options(*LOAD_VIEW)
        )
        if evaluation is None:
            raise EvaluationNotFound(f"no evaluation {evaluation_id}")
        return evaluation_view(session, evaluation)


def _audit_read(session: Session, actor: Actor, details: dict[str, Any]) -> None:
    append_event(
        session,
        actor=actor.name,
        actor_role=actor.role_name,
        action="qa.evaluation.view",
        client_addr=actor.client_addr,
        details=details,
    )


def get_evaluation(runtime: Sessions, evaluation_id: uuid.UUID, *, actor: Actor) -> EvaluationView:
    """One evaluation, with every version (audited ``qa.evaluation.view``)."""
    actor.require(Action.QA_EVALUATE)
    view = _read(runtime, evaluation_id)
    with transaction(runtime.sessions) as session:
        _audit_read(session, actor, {"evaluation_id": str(evaluation_id)})
    return view


def list_evaluations(
    runtime: Sessions,
    *,
    recording_id: uuid.UUID | None = None,
    agent: str | None = None,
    status: EvaluationStatus | None = None,
    actor: Actor,
) -> list[EvaluationView]:
    """Evaluations, newest change first, of one call and/or one agent and/or in one
    status (``disputed``: the disputes to answer); audited."""
    actor.require(Action.QA_EVALUATE)
    statement = select(Evaluation).options(*LOAD_VIEW)
    if status is not None:
        statement = statement.where(Evaluation.status == status)
    if recording_id is not None:
        statement = statement.where(Evaluation.recording_id == recording_id)
    if agent is not None:
        statement = statement.where(Evaluation.agent == agent.strip()[:128])
    statement = statement.order_by(Evaluation.updated_at.desc(), Evaluation.id).limit(LIST_LIMIT)
    with runtime.sessions() as session:
        views = [evaluation_view(session, e) for e in session.scalars(statement)]
    with transaction(runtime.sessions) as session:
        _audit_read(
            session,
            actor,
            {
                "recording_id": str(recording_id) if recording_id else None,
                "agent_filter": agent is not None,
                "status": status.value if status else None,
                "results": len(views),
            },
        )
    return views
