"""``/api/v1/qa``: sampling plans and their samples, for QA trainers.

The routes translate; :mod:`recarchive.qa` decides who may, draws, withdraws
and audits. A sample's calls are shown as ``GET /recordings/{id}`` shows
them to the caller's role: a QA trainer never sees who called.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from recarchive.access.actors import Actor
from recarchive.api.deps import ClientDep, PrincipalDep, RuntimeDep
from recarchive.api.schemas import COMMON_ERRORS, ErrorOut, RecordingOut, RequestBody
from recarchive.qa.plans import (
    MAX_CALLS_PER_AGENT,
    MAX_DURATION_S,
    MAX_FILTER_VALUES,
    Criteria,
    create_plan,
    get_plan,
    list_plans,
    plan_dict,
    revise_plan,
)
from recarchive.qa.sampling import run_sample, show_sample
from recarchive.qa.verify import verify_sample

router = APIRouter(prefix="/api/v1/qa", tags=["qa"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    **COMMON_ERRORS,
    403: {"model": ErrorOut, "description": "Only QA trainers sample calls."},
}
_PLAN: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    404: {"model": ErrorOut, "description": "No such plan."},
}
_SAMPLE: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    404: {"model": ErrorOut, "description": "No such sample."},
}


class CriteriaIn(RequestBody):
    """What a plan draws: N calls per agent per week or month, among the calls matching."""

    calls_per_agent: int = Field(ge=1, le=MAX_CALLS_PER_AGENT)
    period_kind: Literal["week", "month"]
    queues: list[str] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)
    reason_codes: list[str] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)
    direction: Literal["inbound", "outbound", "internal", "unknown"] | None = None
    min_duration_s: int | None = Field(default=None, ge=0, le=MAX_DURATION_S)
    max_duration_s: int | None = Field(default=None, ge=0, le=MAX_DURATION_S)
    not_evaluated: bool = Field(
        default=False, description="Only calls without an evaluation (any status, any form)."
    )

    def criteria(self) -> Criteria:
        return Criteria(
            calls_per_agent=self.calls_per_agent,
            period_kind=self.period_kind,
            queues=self.queues,
            reason_codes=self.reason_codes,
            direction=self.direction,
            min_duration_s=self.min_duration_s,
            max_duration_s=self.max_duration_s,
            not_evaluated=self.not_evaluated,
        )


class PlanIn(CriteriaIn):
    name: str = Field(min_length=1, max_length=128)


class SampleIn(RequestBody):
    period: str = Field(
        min_length=1, max_length=32, description="An ISO week (2026-W49) or a month (2026-11)."
    )


class CriteriaOut(BaseModel):
    calls_per_agent: int
    period_kind: str
    queues: list[str]
    reason_codes: list[str]
    direction: str | None
    min_duration_s: int | None
    max_duration_s: int | None
    not_evaluated: bool = Field(
        default=False, description="Calls already evaluated were not candidates (false before it)."
    )


class PlanVersionOut(BaseModel):
    version: int
    criteria: CriteriaOut
    created_by: str
    created_at: dt.datetime


class PlanOut(BaseModel):
    id: uuid.UUID
    name: str
    version: int = Field(description="The current version: the one the next run draws with.")
    criteria: CriteriaOut
    created_by: str
    created_at: dt.datetime
    versions: list[PlanVersionOut]


class PlanListOut(BaseModel):
    items: list[PlanOut]


class PlanRefOut(BaseModel):
    id: uuid.UUID
    name: str


class AgentCountOut(BaseModel):
    agent: str
    candidates: int
    picked: int
    withdrawn: int


class SampleOut(BaseModel):
    id: uuid.UUID
    plan: PlanRefOut
    plan_version: int
    period: str
    period_start: dt.datetime
    period_end: dt.datetime
    criteria: CriteriaOut
    seed: str
    drawn_by: str
    drawn_at: dt.datetime
    already_drawn: bool = Field(description="True: the plan had been run for the period already.")
    candidates: int
    picked: int
    withdrawn: int = Field(description="Picks withdrawn since (objected, restricted, deleted).")
    agents: list[AgentCountOut]
    recordings: list[RecordingOut] = Field(description="The picks still in the sample.")


class AgentCheckOut(BaseModel):
    agent: str
    candidates: int
    picked: int
    expected: int
    matches: bool


class VerificationOut(BaseModel):
    sample_id: uuid.UUID
    period: str
    seed: str
    calls_per_agent: int
    ok: bool
    totals_match: bool
    agents: list[AgentCheckOut]


@router.post(
    "/plans",
    response_model=PlanOut,
    status_code=201,
    responses={**_ERRORS, 409: {"model": ErrorOut, "description": "A plan has that name."}},
)
def plans_create(
    body: PlanIn, runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep
) -> dict[str, Any]:
    """Define a sampling plan (version 1), audited."""
    actor = Actor.staff(principal, client)
    plan = create_plan(runtime, name=body.name, criteria=body.criteria(), actor=actor)
    return plan_dict(plan)


@router.get("/plans", response_model=PlanListOut, responses=_ERRORS)
def plans_list(runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep) -> dict[str, Any]:
    """Every sampling plan, by name, with its versions."""
    plans = list_plans(runtime, actor=Actor.staff(principal, client))
    return {"items": [plan_dict(plan) for plan in plans]}


@router.get("/plans/{plan_id}", response_model=PlanOut, responses=_PLAN)
def plans_get(
    plan_id: uuid.UUID, runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep
) -> dict[str, Any]:
    """One sampling plan with every version."""
    return plan_dict(get_plan(runtime, plan_id, actor=Actor.staff(principal, client)))


@router.post("/plans/{plan_id}/versions", response_model=PlanOut, status_code=201, responses=_PLAN)
def plans_revise(
    plan_id: uuid.UUID,
    body: CriteriaIn,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    client: ClientDep,
) -> dict[str, Any]:
    """Revise a plan: its next version, with these criteria (samples keep theirs), audited."""
    actor = Actor.staff(principal, client)
    return plan_dict(revise_plan(runtime, plan_id, criteria=body.criteria(), actor=actor))


@router.post("/plans/{plan_id}/samples", response_model=SampleOut, responses=_PLAN)
def samples_run(
    plan_id: uuid.UUID,
    body: SampleIn,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    client: ClientDep,
) -> dict[str, Any]:
    """Run the plan for a period: its sample, drawn now or, if drawn before, the stored one."""
    actor = Actor.staff(principal, client)
    return run_sample(runtime, plan_id, body.period, actor=actor).as_dict()


@router.get("/samples/{sample_id}", response_model=SampleOut, responses=_SAMPLE)
def samples_get(
    sample_id: uuid.UUID, runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep
) -> dict[str, Any]:
    """A stored sample: the calls still in it, per-agent counts (withdrawn calls counted only)."""
    return show_sample(runtime, sample_id, actor=Actor.staff(principal, client)).as_dict()


@router.get("/samples/{sample_id}/verify", response_model=VerificationOut, responses=_SAMPLE)
def samples_verify(
    sample_id: uuid.UUID, runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep
) -> dict[str, Any]:
    """Repeat the sample's draw from its seed and say whether the stored picks are its picks."""
    return verify_sample(runtime, sample_id, actor=Actor.staff(principal, client)).as_dict()
