"""``/api/v1/qa/forms`` and ``/api/v1/qa/evaluations``: scorecards, for QA trainers.

The routes translate; :mod:`recarchive.qa.scorecards` and
:mod:`recarchive.qa.evaluations` check forms and answers, compute scores,
keep versions and audit. A score is never taken from the client.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from recarchive.access.actors import Actor
from recarchive.api.deps import ClientDep, PrincipalDep, RuntimeDep
from recarchive.api.qa_notes import EvaluationNoteOut
from recarchive.api.schemas import COMMON_ERRORS, ErrorOut, RequestBody
from recarchive.qa.evaluations import (
    create_evaluation,
    get_evaluation,
    list_evaluations,
    revise_evaluation,
)
from recarchive.qa.models import EvaluationStatus
from recarchive.qa.scorecards import create_form, form_dict, get_form, list_forms, revise_form
from recarchive.qa.scoring import MAX_QUESTIONS, MAX_SECTIONS

router = APIRouter(prefix="/api/v1/qa", tags=["qa"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    **COMMON_ERRORS,
    403: {"model": ErrorOut, "description": "Only QA trainers keep scorecards."},
}
_FORM: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    404: {"model": ErrorOut, "description": "No such form."},
}
_EVALUATION: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    404: {
        "model": ErrorOut,
        "description": "No such evaluation, form version, or call a QA trainer may know of.",
    },
}


class DefinitionIn(RequestBody):
    """A form version: its sections and their questions (docs/qa.md, "Scorecard forms")."""

    description: str = Field(default="", max_length=2000)
    sections: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_SECTIONS)

    def definition(self) -> dict[str, Any]:
        return {"description": self.description, "sections": self.sections}


class FormIn(DefinitionIn):
    name: str = Field(min_length=1, max_length=128)


class FormVersionOut(BaseModel):
    id: uuid.UUID = Field(description="The form version's id: what an evaluation names.")
    version: int
    definition: dict[str, Any]
    created_by: str
    created_at: dt.datetime


class FormOut(BaseModel):
    id: uuid.UUID
    name: str
    version: int = Field(description="The current version: the one new evaluations use.")
    current_version_id: uuid.UUID
    created_by: str
    created_at: dt.datetime
    versions: list[FormVersionOut]


class FormListOut(BaseModel):
    items: list[FormOut]


class AnswersIn(RequestBody):
    answers: dict[str, Any] = Field(
        max_length=MAX_QUESTIONS,
        description='Question id -> "yes" | "no" | "na", a whole number on the scale, or text.',
    )
    submit: bool = Field(default=False, description="Submit the evaluation (no longer a draft).")


class EvaluationIn(AnswersIn):
    recording_id: uuid.UUID
    form_version_id: uuid.UUID


class FormRefOut(BaseModel):
    id: uuid.UUID
    name: str
    version: int
    version_id: uuid.UUID


class ResponseOut(BaseModel):
    kind: str = Field(description="acknowledge, dispute (the agent's) or answer (a trainer's).")
    version: int = Field(description="The evaluation version it refers to.")
    comment: str | None
    by: str
    at: dt.datetime


class EvaluationOut(BaseModel):
    id: uuid.UUID
    recording_id: uuid.UUID
    agent: str | None
    queue: str | None
    started_at: dt.datetime
    form: FormRefOut
    status: str = Field(description="draft, submitted, acknowledged, disputed or dispute_answered.")
    version: int
    score: float | None = Field(
        description="0..100, computed by the archive; null: nothing applied."
    )
    sections: dict[str, float | None]
    critical_failed: list[str]
    answers: dict[str, Any]
    notes: list[EvaluationNoteOut] = Field(
        description="Notes attached to the evaluation (kept with it after the call)."
    )
    created_by: str
    created_at: dt.datetime
    updated_by: str
    updated_at: dt.datetime
    responses: list[ResponseOut] = Field(
        description="The agent's acknowledgements and dispute, the trainer's answer; oldest first."
    )


class EvaluationListOut(BaseModel):
    items: list[EvaluationOut]


class EvaluationVersionOut(BaseModel):
    version: int
    status: str
    answers: dict[str, Any]
    score: float | None
    sections: dict[str, float | None]
    critical_failed: list[str]
    saved_by: str
    saved_at: dt.datetime
    superseded: bool
    superseded_by: str | None
    superseded_at: dt.datetime | None


class EvaluationVersionsOut(BaseModel):
    evaluation_id: uuid.UUID
    items: list[EvaluationVersionOut]


@router.get("/forms", response_model=FormListOut, responses=_ERRORS)
def forms_list(runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep) -> dict[str, Any]:
    """Every scorecard form, by name, with its versions."""
    forms = list_forms(runtime, actor=Actor.staff(principal, client))
    return {"items": [form_dict(form) for form in forms]}


@router.post(
    "/forms",
    response_model=FormOut,
    status_code=201,
    responses={**_ERRORS, 409: {"model": ErrorOut, "description": "A form has that name."}},
)
def forms_create(
    body: FormIn, runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep
) -> dict[str, Any]:
    """Define a scorecard form (version 1), audited."""
    actor = Actor.staff(principal, client)
    return form_dict(
        create_form(runtime, name=body.name, definition=body.definition(), actor=actor)
    )


@router.get("/forms/{form_id}", response_model=FormOut, responses=_FORM)
def forms_get(
    form_id: uuid.UUID, runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep
) -> dict[str, Any]:
    """One form with every version."""
    return form_dict(get_form(runtime, form_id, actor=Actor.staff(principal, client)))


@router.post("/forms/{form_id}/versions", response_model=FormOut, status_code=201, responses=_FORM)
def forms_revise(
    form_id: uuid.UUID,
    body: DefinitionIn,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    client: ClientDep,
) -> dict[str, Any]:
    """The form's next version (evaluations made so far keep theirs), audited."""
    actor = Actor.staff(principal, client)
    return form_dict(revise_form(runtime, form_id, definition=body.definition(), actor=actor))


@router.post("/evaluations", response_model=EvaluationOut, status_code=201, responses=_EVALUATION)
def evaluations_create(
    body: EvaluationIn, runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep
) -> dict[str, Any]:
    """Score a call against a form version; the archive computes the score. Audited."""
    view = create_evaluation(
        runtime,
        recording_id=body.recording_id,
        form_version_id=body.form_version_id,
        answers=body.answers,
        submit=body.submit,
        actor=Actor.staff(principal, client),
    )
    return view.as_dict()


@router.get("/evaluations", response_model=EvaluationListOut, responses=_ERRORS)
def evaluations_list(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    client: ClientDep,
    recording_id: uuid.UUID | None = None,
    agent: str | None = Query(default=None, min_length=1, max_length=128),
    status: Annotated[
        EvaluationStatus | None,
        Query(description="Only those in this status (disputed: the disputes to answer)."),
    ] = None,
) -> dict[str, Any]:
    """Evaluations of one call and/or one agent and/or in one status, newest change first."""
    views = list_evaluations(
        runtime,
        recording_id=recording_id,
        agent=agent,
        status=status,
        actor=Actor.staff(principal, client),
    )
    return {"items": [view.as_dict() for view in views]}


@router.get("/evaluations/{evaluation_id}", response_model=EvaluationOut, responses=_EVALUATION)
def evaluations_get(
    evaluation_id: uuid.UUID, runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep
) -> dict[str, Any]:
    """One evaluation: its current version."""
    return get_evaluation(runtime, evaluation_id, actor=Actor.staff(principal, client)).as_dict()


@router.put("/evaluations/{evaluation_id}", response_model=EvaluationOut, responses=_EVALUATION)
def evaluations_revise(
    evaluation_id: uuid.UUID,
    body: AnswersIn,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    client: ClientDep,
) -> dict[str, Any]:
    """Change an evaluation: a new version, the last one kept and marked superseded."""
    view = revise_evaluation(
        runtime,
        evaluation_id,
        answers=body.answers,
        submit=body.submit,
        actor=Actor.staff(principal, client),
    )
    return view.as_dict()


@router.get(
    "/evaluations/{evaluation_id}/versions",
    response_model=EvaluationVersionsOut,
    responses=_EVALUATION,
)
def evaluations_versions(
    evaluation_id: uuid.UUID, runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep
) -> dict[str, Any]:
    """Every version of an evaluation, oldest first, superseded ones marked."""
    view = get_evaluation(runtime, evaluation_id, actor=Actor.staff(principal, client))
    return {"evaluation_id": str(evaluation_id), "items": view.versions()}
