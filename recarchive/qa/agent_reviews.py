"""An agent's own evaluations: reading, acknowledging, disputing; a trainer's answer.

The agent (role ``agent``, ``qa.self``) sees only the evaluations
:mod:`recarchive.qa.agent_access` gives them: submitted (never drafts), of
calls made under one of their linked agent identifiers. Anything else is
:class:`~recarchive.qa.evaluations.EvaluationNotFound`, as for an unknown id.

- **Acknowledge**: the agent has read the current version. A later submitted
  version (a trainer's revision) makes the evaluation ``submitted`` again and
  needs a new acknowledgement (:func:`recarchive.qa.evaluations.next_status`).
- **Dispute**: once per evaluation (not per version), with a comment, while
  the evaluation is ``submitted`` and within ``qa.dispute_window_days`` of the
  submission of its current version (the save of that version).
- **Answer**: a QA trainer (``qa.answer``) answers a ``disputed`` evaluation
  with a comment; it becomes ``dispute_answered``.

Each is a :class:`~recarchive.qa.models.EvaluationResponse` naming the version
it refers to, so the evaluation records both sides. Comments are stripped and
length-limited, and never logged or audited: the audit entries
(``qa.evaluation.acknowledge``, ``.dispute``, ``.answer``, and
``qa.evaluation.view`` for the agent's reads) carry ids and versions only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from recarchive.access.actors import Actor
from recarchive.access.audit import append_event
from recarchive.access.policy import Action
from recarchive.catalogue.database import lock_for_write, transaction, utcnow
from recarchive.errors import ConflictError, InvalidInputError
from recarchive.parts import Catalogue, Sessions
from recarchive.qa.agent_access import own_agents, own_evaluation_condition
from recarchive.qa.evaluations import (
    LIST_LIMIT,
    LOAD_VIEW,
    EvaluationNotFound,
    EvaluationView,
    evaluation_view,
)
from recarchive.qa.models import (
    Evaluation,
    EvaluationResponse,
    EvaluationStatus,
    FormVersion,
    ResponseKind,
)

__all__ = [
    "COMMENT_MAX",
    "BadComment",
    "OwnEvaluation",
    "ResponseRefused",
    "acknowledge_evaluation",
    "answer_dispute",
    "dispute_evaluation",
    "get_own_evaluation",
    "list_own_evaluations",
]

#: The longest comment of a dispute or an answer (characters, after stripping).
COMMENT_MAX = 2000


class ResponseRefused(ConflictError):
    """the evaluation cannot take this response now"""


class BadComment(InvalidInputError):
    """the comment is missing or too long"""

    field = "comment"


@dataclasses.dataclass(frozen=True)
class OwnEvaluation:
    """An evaluation as its agent sees it, with until when they may dispute it.

    One evaluation (not the list) also carries its form version's definition,
    so the agent reads each answer beside its question's text: an agent may
    not read the scorecard forms themselves (``qa.form``).
    """

    view: EvaluationView
    #: The end of the dispute window; None once no dispute is possible.
    dispute_until: dt.datetime | None
    #: The sections and questions of the form version it was made with (one evaluation only).
    form_definition: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        until = self.dispute_until
        return {
            **self.view.as_dict(),
            "dispute_until": until.isoformat() if until else None,
            "form_definition": self.form_definition,
        }


def _definition(session: Session, evaluation: Evaluation) -> dict[str, Any]:
    """The definition of the form version ``evaluation`` was made with."""
    definition: dict[str, Any] = session.get_one(FormVersion, evaluation.form_version_id).definition
    return definition


def check_comment(comment: str | None) -> str:
    """The comment stripped; :class:`BadComment` when empty or longer than :data:`COMMENT_MAX`."""
    text = (comment or "").strip()
    if not text:
        raise BadComment("a comment is required")
    if len(text) > COMMENT_MAX:
        raise BadComment(f"the comment is longer than {COMMENT_MAX} characters")
    return text


def _submitted_at(evaluation: Evaluation) -> dt.datetime:
    current = next(v for v in evaluation.versions if v.version == evaluation.current_version)
    return current.saved_at


def _dispute_until(
    evaluation: Evaluation, window_days: int, now: dt.datetime
) -> dt.datetime | None:
    if evaluation.status is not EvaluationStatus.SUBMITTED:
        return None
    if any(r.kind is ResponseKind.DISPUTE for r in evaluation.responses):
        return None
    until = _submitted_at(evaluation) + dt.timedelta(days=window_days)
    return until if now < until else None


def _audit(
    session: Session,
    actor: Actor,
    action: str,
    evaluation: Evaluation | None,
    details: dict[str, Any],
) -> None:
    append_event(
        session,
        actor=actor.name,
        actor_role=actor.role_name,
        action=action,
        recording_id=evaluation.recording_id if evaluation is not None else None,
        client_addr=actor.client_addr,
        details=details,
    )


def _own(session: Session, evaluation_id: uuid.UUID, actor: Actor, *, lock: bool) -> Evaluation:
    """The agent's own evaluation, or :class:`EvaluationNotFound` (whatever the id is)."""
    mine = own_evaluation_condition(own_agents(session, actor.user_id))
    statement = select(Evaluation).where(Evaluation.id == evaluation_id, mine).options(*LOAD_VIEW)
    evaluation = session.scalar(statement.with_for_update() if lock else statement)
    if evaluation is None:
        raise EvaluationNotFound(f"no evaluation {evaluation_id}")
    return evaluation


def list_own_evaluations(
    runtime: Catalogue, *, actor: Actor, now: dt.datetime | None = None
) -> list[OwnEvaluation]:
    """The agent's evaluations, newest change first (audited ``qa.evaluation.view``)."""
    actor.require(Action.QA_SELF)
    now = now or utcnow()
    window = runtime.settings.qa.dispute_window_days
    with transaction(runtime.sessions) as session:
        condition = own_evaluation_condition(own_agents(session, actor.user_id))
        statement = (
            select(Evaluation)
            .where(condition)
            .options(*LOAD_VIEW)
            .order_by(Evaluation.updated_at.desc(), Evaluation.id)
            .limit(LIST_LIMIT)
        )
        items = [
            OwnEvaluation(evaluation_view(session, e), _dispute_until(e, window, now))
            for e in session.scalars(statement)
        ]
        _audit(session, actor, "qa.evaluation.view", None, {"own": True, "results": len(items)})
    return items


def get_own_evaluation(
    runtime: Catalogue, evaluation_id: uuid.UUID, *, actor: Actor, now: dt.datetime | None = None
) -> OwnEvaluation:
    """One of the agent's evaluations (audited ``qa.evaluation.view``)."""
    actor.require(Action.QA_SELF)
    now = now or utcnow()
    with transaction(runtime.sessions) as session:
        evaluation = _own(session, evaluation_id, actor, lock=False)
        found = OwnEvaluation(
            evaluation_view(session, evaluation),
            _dispute_until(evaluation, runtime.settings.qa.dispute_window_days, now),
            _definition(session, evaluation),
        )
        details = {"evaluation_id": str(evaluation_id), "version": evaluation.current_version}
        _audit(session, actor, "qa.evaluation.view", evaluation, details)
    return found


def _respond(
    session: Session,
    evaluation: Evaluation,
    kind: ResponseKind,
    status: EvaluationStatus,
    comment: str | None,
    actor: Actor,
    now: dt.datetime,
) -> None:
    response = EvaluationResponse(
        evaluation=evaluation,
        kind=kind,
        version=evaluation.current_version,
        comment=comment,
        by=actor.name,
        at=now,
    )
    session.add(response)
    evaluation.status = status
    session.flush()
    details = {
        "evaluation_id": str(evaluation.id),
        "version": evaluation.current_version,
        "status": status.value,
    }
    _audit(session, actor, f"qa.evaluation.{kind.value}", evaluation, details)


def acknowledge_evaluation(
    runtime: Catalogue, evaluation_id: uuid.UUID, *, actor: Actor, now: dt.datetime | None = None
) -> OwnEvaluation:
    """The agent acknowledges the current version of their evaluation (audited).

    Refused (:class:`ResponseRefused`) when it is already acknowledged, or
    disputed and not yet answered.
    """
    actor.require(Action.QA_SELF)
    now = now or utcnow()
    with transaction(runtime.sessions) as session:
        lock_for_write(session)
        evaluation = _own(session, evaluation_id, actor, lock=True)
        if evaluation.status is EvaluationStatus.ACKNOWLEDGED:
            raise ResponseRefused(
                f"version {evaluation.current_version} of this evaluation is already acknowledged"
            )
        if evaluation.status is EvaluationStatus.DISPUTED:
            raise ResponseRefused("this evaluation is disputed: wait for the trainer's answer")
        _respond(
            session,
            evaluation,
            ResponseKind.ACKNOWLEDGE,
            EvaluationStatus.ACKNOWLEDGED,
            None,
            actor,
            now,
        )
        return OwnEvaluation(
            evaluation_view(session, evaluation), None, _definition(session, evaluation)
        )


def dispute_evaluation(
    runtime: Catalogue,
    evaluation_id: uuid.UUID,
    comment: str | None,
    *,
    actor: Actor,
    now: dt.datetime | None = None,
) -> OwnEvaluation:
    """The agent disputes their evaluation, once, with a comment, within the window (audited).

    Raises :class:`BadComment`, and :class:`ResponseRefused` when it was
    disputed before (any version), is not ``submitted`` (acknowledged
    already), or the window (``qa.dispute_window_days`` from the submission
    of the current version) has passed.
    """
    actor.require(Action.QA_SELF)
    text = check_comment(comment)
    now = now or utcnow()
    window = runtime.settings.qa.dispute_window_days
    with transaction(runtime.sessions) as session:
        lock_for_write(session)
        evaluation = _own(session, evaluation_id, actor, lock=True)
        if any(r.kind is ResponseKind.DISPUTE for r in evaluation.responses):
            raise ResponseRefused("this evaluation was disputed once already")
        if evaluation.status is not EvaluationStatus.SUBMITTED:
            raise ResponseRefused(
                f"this evaluation is {evaluation.status.value}: only a submitted one is disputed"
            )
        if _dispute_until(evaluation, window, now) is None:
            raise ResponseRefused(f"the {window}-day window to dispute this evaluation has passed")
        _respond(
            session, evaluation, ResponseKind.DISPUTE, EvaluationStatus.DISPUTED, text, actor, now
        )
        return OwnEvaluation(
            evaluation_view(session, evaluation), None, _definition(session, evaluation)
        )


def answer_dispute(
    runtime: Sessions,
    evaluation_id: uuid.UUID,
    comment: str | None,
    *,
    actor: Actor,
    now: dt.datetime | None = None,
) -> EvaluationView:
    """A QA trainer answers the agent's dispute with a comment (audited).

    Raises :class:`EvaluationNotFound`, :class:`BadComment`, and
    :class:`ResponseRefused` unless the evaluation is ``disputed``.
    """
    actor.require(Action.QA_ANSWER)
    text = check_comment(comment)
    now = now or utcnow()
    with transaction(runtime.sessions) as session:
        lock_for_write(session)
        evaluation = session.scalar(
            select(Evaluation)
            .where(Evaluation.id == evaluation_id)
            .options(*LOAD_VIEW)
            .with_for_update()
        )
        if evaluation is None:
            raise EvaluationNotFound(f"no evaluation {evaluation_id}")
        if evaluation.status is not EvaluationStatus.DISPUTED:
            raise ResponseRefused(
                f"this evaluation is {evaluation.status.value}: only a disputed one is answered"
            )
        _respond(
            session,
            evaluation,
            ResponseKind.ANSWER,
            EvaluationStatus.DISPUTE_ANSWERED,
            text,
            actor,
            now,
        )
        view = evaluation_view(session, evaluation)
    return view
