"""``/api/v1/qa/my/evaluations`` (an agent's own) and a trainer's answer to a dispute.

The routes translate; :mod:`recarchive.qa.agent_reviews` decides what the agent
sees (submitted evaluations of their own calls only; anything else is the
404 of an unknown id), keeps the one-dispute rule and the window, and audits.
An agent hears their evaluated call through ``GET /api/v1/recordings/{id}/audio``
with ``purpose=self_review``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from recarchive.access.actors import Actor
from recarchive.api.deps import ClientDep, PrincipalDep, RuntimeDep
from recarchive.api.qa_scores import EvaluationOut
from recarchive.api.schemas import COMMON_ERRORS, ErrorOut, RequestBody
from recarchive.qa.agent_reviews import (
    COMMENT_MAX,
    acknowledge_evaluation,
    answer_dispute,
    dispute_evaluation,
    get_own_evaluation,
    list_own_evaluations,
)

router = APIRouter(prefix="/api/v1/qa", tags=["qa"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    **COMMON_ERRORS,
    403: {"model": ErrorOut, "description": "Only agents see their own evaluations."},
}
_OWN: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    404: {"model": ErrorOut, "description": "No such evaluation of yours (or not submitted)."},
}
_RESPOND: dict[int | str, dict[str, Any]] = {
    **_OWN,
    409: {
        "model": ErrorOut,
        "description": "Not now: already acknowledged, disputed once, or the window has passed.",
    },
}
_ANSWER: dict[int | str, dict[str, Any]] = {
    **COMMON_ERRORS,
    403: {"model": ErrorOut, "description": "Only QA trainers answer disputes."},
    404: {"model": ErrorOut, "description": "No such evaluation."},
    409: {"model": ErrorOut, "description": "The evaluation is not disputed."},
}


class CommentIn(RequestBody):
    comment: str = Field(
        min_length=1, max_length=COMMENT_MAX, description="Why (stripped; never audited)."
    )


class OwnEvaluationOut(EvaluationOut):
    dispute_until: dt.datetime | None = Field(
        description="Until when you may dispute it; null: no dispute is possible (any more)."
    )
    form_definition: dict[str, Any] | None = Field(
        default=None,
        description="The form version's sections and questions (one evaluation; null in the list).",
    )


class OwnEvaluationListOut(BaseModel):
    items: list[OwnEvaluationOut]


@router.get("/my/evaluations", response_model=OwnEvaluationListOut, responses=_ERRORS)
def my_evaluations(
    runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep
) -> dict[str, Any]:
    """Your evaluations (submitted, of calls under your agent identifiers), newest first."""
    items = list_own_evaluations(runtime, actor=Actor.staff(principal, client))
    return {"items": [item.as_dict() for item in items]}


@router.get("/my/evaluations/{evaluation_id}", response_model=OwnEvaluationOut, responses=_OWN)
def my_evaluation(
    evaluation_id: uuid.UUID, runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep
) -> dict[str, Any]:
    """One of your evaluations, with the responses recorded on it."""
    actor = Actor.staff(principal, client)
    return get_own_evaluation(runtime, evaluation_id, actor=actor).as_dict()


@router.post(
    "/my/evaluations/{evaluation_id}/acknowledge",
    response_model=OwnEvaluationOut,
    responses=_RESPOND,
)
def my_evaluation_acknowledge(
    evaluation_id: uuid.UUID, runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep
) -> dict[str, Any]:
    """Acknowledge the current version of your evaluation (audited)."""
    actor = Actor.staff(principal, client)
    return acknowledge_evaluation(runtime, evaluation_id, actor=actor).as_dict()


@router.post(
    "/my/evaluations/{evaluation_id}/dispute", response_model=OwnEvaluationOut, responses=_RESPOND
)
def my_evaluation_dispute(
    evaluation_id: uuid.UUID,
    body: CommentIn,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    client: ClientDep,
) -> dict[str, Any]:
    """Dispute your evaluation, once, within ``qa.dispute_window_days`` (audited)."""
    actor = Actor.staff(principal, client)
    return dispute_evaluation(runtime, evaluation_id, body.comment, actor=actor).as_dict()


@router.post("/evaluations/{evaluation_id}/answer", response_model=EvaluationOut, responses=_ANSWER)
def evaluation_answer(
    evaluation_id: uuid.UUID,
    body: CommentIn,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    client: ClientDep,
) -> dict[str, Any]:
    """Answer the agent's dispute of an evaluation (QA trainers; audited)."""
    actor = Actor.staff(principal, client)
    return answer_dispute(runtime, evaluation_id, body.comment, actor=actor).as_dict()
