"""Sampling plans: defined, revised (a new version each time) and read by QA trainers.

A version never changes once written: a sample keeps the version it was
drawn with, and a revision makes the next version, which the next run of
the plan draws with. Every change is audited (``qa.plan``).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from recarchive.access.actors import Actor
from recarchive.access.audit import append_event
from recarchive.access.policy import Action
from recarchive.catalogue.database import lock_for_write, transaction
from recarchive.catalogue.models import Direction
from recarchive.errors import ConflictError, InvalidInputError, NotFoundError
from recarchive.parts import Sessions
from recarchive.qa.models import PeriodKind, Plan, PlanVersion

__all__ = [
    "Criteria",
    "PlanError",
    "PlanNotFound",
    "create_plan",
    "find_plan",
    "get_plan",
    "list_plans",
    "plan_dict",
    "revise_plan",
]

#: The most calls a plan may ask of each agent in one period.
MAX_CALLS_PER_AGENT = 1000
#: Filters given as lists hold at most this many values.
MAX_FILTER_VALUES = 100
#: The longest duration bound, in seconds (a day).
MAX_DURATION_S = 86_400


class PlanError(ConflictError):
    """the plan cannot be saved"""


class PlanNotFound(NotFoundError):
    """no such sampling plan"""


class CriteriaError(InvalidInputError):
    """the plan's criteria are not valid"""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field


@dataclasses.dataclass(frozen=True)
class Criteria:
    """What a plan version draws: N calls per agent per week or month, among matching calls."""

    calls_per_agent: int
    period_kind: PeriodKind | str
    queues: Sequence[str] = ()
    reason_codes: Sequence[str] = ()
    direction: str | None = None
    min_duration_s: int | None = None
    max_duration_s: int | None = None
    #: Only calls that have no evaluation yet (any status, any form).
    not_evaluated: bool = False

    def checked(self) -> Criteria:
        """The criteria, cleaned (values trimmed, deduplicated); :class:`CriteriaError` if wrong."""
        if not 1 <= self.calls_per_agent <= MAX_CALLS_PER_AGENT:
            raise _invalid("calls_per_agent", f"must be 1 to {MAX_CALLS_PER_AGENT}")
        try:
            kind = PeriodKind(self.period_kind)
        except ValueError:
            raise _invalid("period_kind", "must be week or month") from None
        queues = _values("queues", self.queues)
        reasons = _values("reason_codes", self.reason_codes)
        direction = self.direction.strip() if self.direction else None
        if direction is not None and direction not in {d.value for d in Direction}:
            known = ", ".join(d.value for d in Direction)
            raise _invalid("direction", f"must be one of {known}")
        for field in ("min_duration_s", "max_duration_s"):
            value = getattr(self, field)
            if value is not None and not 0 <= value <= MAX_DURATION_S:
                raise _invalid(field, f"must be 0 to {MAX_DURATION_S} seconds")
        low, high = self.min_duration_s, self.max_duration_s
        if low is not None and high is not None and low > high:
            raise _invalid("max_duration_s", "must not be less than min_duration_s")
        return dataclasses.replace(
            self, period_kind=kind, queues=queues, reason_codes=reasons, direction=direction
        )


def _invalid(field: str, problem: str) -> CriteriaError:
    return CriteriaError(field, problem)


def _values(field: str, values: Sequence[str]) -> tuple[str, ...]:
    if isinstance(values, str):
        values = [values]
    cleaned = tuple(dict.fromkeys(v.strip() for v in values if v.strip()))
    if len(cleaned) > MAX_FILTER_VALUES:
        raise _invalid(field, f"may hold at most {MAX_FILTER_VALUES} values")
    if any(len(v) > 128 for v in cleaned):
        raise _invalid(field, "values are at most 128 characters")
    return cleaned


def _version(plan: Plan, number: int, criteria: Criteria, actor: Actor) -> PlanVersion:
    return PlanVersion(
        plan=plan,
        version=number,
        calls_per_agent=criteria.calls_per_agent,
        period_kind=PeriodKind(criteria.period_kind),
        queues=list(criteria.queues),
        reason_codes=list(criteria.reason_codes),
        direction=criteria.direction,
        min_duration_s=criteria.min_duration_s,
        max_duration_s=criteria.max_duration_s,
        not_evaluated=bool(criteria.not_evaluated),
        created_by=actor.name,
    )


def _audit(session: Session, actor: Actor, plan: Plan, version: PlanVersion, change: str) -> None:
    append_event(
        session,
        actor=actor.name,
        actor_role=actor.role_name,
        action="qa.plan",
        client_addr=actor.client_addr,
        details={
            "plan_id": str(plan.id),
            "name": plan.name,
            "version": version.version,
            "change": change,
            "criteria": version.criteria(),
        },
    )


def create_plan(runtime: Sessions, *, name: str, criteria: Criteria, actor: Actor) -> Plan:
    """A new plan (version 1); :class:`PlanError` if the name is taken."""
    actor.require(Action.QA_PLAN)
    name = name.strip()
    if not name or len(name) > 128:
        raise _invalid("name", "must be 1 to 128 characters")
    checked = criteria.checked()
    try:
        with transaction(runtime.sessions) as session:
            if session.scalar(select(Plan.id).where(Plan.name == name)) is not None:
                raise PlanError(f"a plan named {name!r} exists; revise it instead")
            plan = Plan(name=name, current_version=1, created_by=actor.name)
            version = _version(plan, 1, checked, actor)
            session.add(plan)
            session.flush()
            _audit(session, actor, plan, version, "created")
    except IntegrityError:  # another request took the name between the check and the insert
        raise PlanError(f"a plan named {name!r} exists; revise it instead") from None
    return get_plan(runtime, plan.id, actor=actor)


def revise_plan(runtime: Sessions, plan_id: uuid.UUID, *, criteria: Criteria, actor: Actor) -> Plan:
    """The plan's next version, with ``criteria``; samples drawn so far keep theirs."""
    actor.require(Action.QA_PLAN)
    checked = criteria.checked()
    with transaction(runtime.sessions) as session:
        lock_for_write(session)  # SQLite ignores FOR UPDATE: the next version number is ours
        plan = session.get(Plan, plan_id, with_for_update=True)
        if plan is None:
            raise PlanNotFound(f"no sampling plan {plan_id}")
        plan.current_version += 1
        version = _version(plan, plan.current_version, checked, actor)
        session.add(version)
        session.flush()
        _audit(session, actor, plan, version, "revised")
    return get_plan(runtime, plan_id, actor=actor)


def _load(session: Session, plan_id: uuid.UUID) -> Plan:
    plan = session.scalar(
        select(Plan).where(Plan.id == plan_id).options(selectinload(Plan.versions))
    )
    if plan is None:
        raise PlanNotFound(f"no sampling plan {plan_id}")
    return plan


def get_plan(runtime: Sessions, plan_id: uuid.UUID, *, actor: Actor) -> Plan:
    """One plan with every version (detached, loaded)."""
    actor.require(Action.QA_PLAN)
    with runtime.sessions() as session:
        return _load(session, plan_id)


def find_plan(runtime: Sessions, name_or_id: str, *, actor: Actor) -> Plan:
    """A plan by its id or its name (what a shell user types)."""
    actor.require(Action.QA_PLAN)
    try:
        return get_plan(runtime, uuid.UUID(name_or_id), actor=actor)
    except ValueError:
        pass
    with runtime.sessions() as session:
        plan_id = session.scalar(select(Plan.id).where(Plan.name == name_or_id.strip()))
        if plan_id is None:
            raise PlanNotFound(f"no sampling plan named {name_or_id[:128]!r}")
        return _load(session, plan_id)


def list_plans(runtime: Sessions, *, actor: Actor) -> list[Plan]:
    """Every plan with its versions, by name."""
    actor.require(Action.QA_PLAN)
    with runtime.sessions() as session:
        return list(
            session.scalars(select(Plan).order_by(Plan.name).options(selectinload(Plan.versions)))
        )


def plan_dict(plan: Plan) -> dict[str, Any]:
    """A plan as the API and ``--json`` show it: its current criteria and every version."""
    versions = sorted(plan.versions, key=lambda v: v.version)
    current = next(v for v in versions if v.version == plan.current_version)
    return {
        "id": str(plan.id),
        "name": plan.name,
        "version": plan.current_version,
        "criteria": current.criteria(),
        "created_by": plan.created_by,
        "created_at": plan.created_at.isoformat(),
        "versions": [
            {
                "version": v.version,
                "criteria": v.criteria(),
                "created_by": v.created_by,
                "created_at": v.created_at.isoformat(),
            }
            for v in versions
        ],
    }
