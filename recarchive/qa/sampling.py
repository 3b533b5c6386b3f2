"""Running a plan for a period: a random, fair, reproducible sample of calls per agent.

The candidates are the calls started in the period (in the installation's
time zone) that match the plan version's filters, have an agent, are
active and within their retention, and that a QA trainer may know of at
all (:func:`recarchive.privacy.visibility.visible_condition`: never one
restricted or objected to); with ``not_evaluated``, only calls that have
no evaluation at the draw (any status, any form). A seed drawn once for (plan version, period)
ranks them (:mod:`recarchive.qa.draw`); each agent's first N are picked.
The seed, the criteria, every candidate and the picks are stored and the
draw is audited (``qa.sample``), so running the plan for the period again
returns the same calls and :func:`verify_sample` can repeat the draw: it
reads the stored candidates, never the catalogue again, so a call evaluated
(or deleted) after the draw changes nothing it checks.

A sample is shown through :func:`recarchive.lookup.views.role_view` (a QA
trainer never sees who called), after withdrawing the picks training may
no longer use (:mod:`recarchive.qa.withdrawal`); withdrawn calls are
counted, never listed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections import Counter
from typing import Any

from sqlalchemy import exists, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from recarchive.access.actors import Actor
from recarchive.access.audit import append_event
from recarchive.access.policy import Action
from recarchive.catalogue.database import lock_for_write, transaction, utcnow
from recarchive.catalogue.models import Direction, Recording, RecordingReason
from recarchive.errors import NotFoundError
from recarchive.lookup.views import RecordingView, role_view
from recarchive.parts import Catalogue, Sessions
from recarchive.qa.calls import usable_condition
from recarchive.qa.draw import draw, new_seed
from recarchive.qa.models import Evaluation, Plan, PlanVersion, Sample, SampleCall
from recarchive.qa.periods import Period, PeriodError, parse_period
from recarchive.qa.plans import PlanNotFound
from recarchive.qa.withdrawal import withdraw_unusable
from recarchive.retention.rules import held_recording_ids

__all__ = ["SampleNotFound", "SampleView", "run_sample", "show_sample"]


class SampleNotFound(NotFoundError):
    """no such sample"""


@dataclasses.dataclass(frozen=True)
class AgentCount:
    agent: str
    candidates: int
    picked: int
    withdrawn: int


@dataclasses.dataclass(frozen=True)
class SampleView:
    """A sample as a QA trainer sees it: the draw, per-agent counts, the calls still in it."""

    sample: Sample
    plan_name: str
    #: True when the plan had already been run for the period: this is the stored sample.
    already_drawn: bool
    agents: tuple[AgentCount, ...]
    recordings: tuple[RecordingView, ...]

    def as_dict(self) -> dict[str, Any]:
        sample = self.sample
        return {
            "id": str(sample.id),
            "plan": {"id": str(sample.plan_id), "name": self.plan_name},
            "plan_version": sample.plan_version,
            "period": sample.period,
            "period_start": sample.period_start.isoformat(),
            "period_end": sample.period_end.isoformat(),
            "criteria": sample.criteria,
            "seed": sample.seed,
            "drawn_by": sample.drawn_by,
            "drawn_at": sample.drawn_at.isoformat(),
            "already_drawn": self.already_drawn,
            "candidates": sample.candidates,
            "picked": sample.picked,
            "withdrawn": sum(a.withdrawn for a in self.agents),
            "agents": [dataclasses.asdict(a) for a in self.agents],
            "recordings": [view.as_dict() for view in self.recordings],
        }


def _candidates(
    session: Session, version: PlanVersion, period: Period, now: dt.datetime
) -> dict[str, list[uuid.UUID]]:
    """Each agent's candidate calls for the period, by the version's filters."""
    statement = select(Recording.agent, Recording.id).where(
        usable_condition(now),
        Recording.agent.is_not(None),
        Recording.agent != "",
        Recording.started_at >= period.start,
        Recording.started_at < period.end,
    )
    if version.queues:
        statement = statement.where(Recording.queue.in_(list(version.queues)))
    if version.reason_codes:
        statement = statement.where(
            exists().where(
                RecordingReason.recording_id == Recording.id,
                RecordingReason.code.in_(list(version.reason_codes)),
            )
        )
    if version.direction is not None:
        statement = statement.where(Recording.direction == Direction(version.direction))
    if version.min_duration_s is not None:
        statement = statement.where(Recording.duration_ms >= version.min_duration_s * 1000)
    if version.max_duration_s is not None:
        statement = statement.where(Recording.duration_ms <= version.max_duration_s * 1000)
    if version.not_evaluated:
        statement = statement.where(~exists().where(Evaluation.recording_id == Recording.id))
    found: dict[str, list[uuid.UUID]] = {}
    for agent, recording_id in session.execute(statement):
        if agent:  # never None here (the statement's condition): for the type checker
            found.setdefault(agent, []).append(recording_id)
    return found


def _check_period(period: Period, version: PlanVersion, now: dt.datetime) -> None:
    if period.kind is not version.period_kind:
        example = "2026-W49" if version.period_kind.value == "week" else "2026-11"
        raise PeriodError(
            f"the plan samples by {version.period_kind.value}: give a period like {example}"
        )
    if period.end > now:
        raise PeriodError(
            f"period {period.label} has not ended (it ends at {period.end.isoformat()}): "
            "a sample is drawn from a whole period, once"
        )


def _draw(
    session: Session, plan: Plan, version: PlanVersion, period: Period, actor: Actor
) -> Sample:
    """Draw, store and audit the sample of ``version`` for ``period``."""
    now = utcnow()
    candidates = _candidates(session, version, period, now)
    seed = new_seed()
    picks = draw(seed, candidates, version.calls_per_agent)
    sample = Sample(
        plan_id=plan.id,
        plan_version=version.version,
        period=period.label,
        period_start=period.start,
        period_end=period.end,
        criteria=version.criteria(),
        seed=seed,
        candidates=sum(len(ids) for ids in candidates.values()),
        picked=sum(len(ids) for ids in picks.values()),
        drawn_by=actor.name,
    )
    session.add(sample)
    session.flush()
    rows = [
        {"sample_id": sample.id, "recording_id": rid, "agent": agent, "picked": rid in chosen}
        for agent, ids in candidates.items()
        for chosen in [set(picks[agent])]
        for rid in ids
    ]
    if rows:
        session.execute(insert(SampleCall), rows)
    per_agent = sorted(
        ([len(ids), len(picks[agent])] for agent, ids in candidates.items()), reverse=True
    )
    append_event(
        session,
        actor=actor.name,
        actor_role=actor.role_name,
        action="qa.sample",
        client_addr=actor.client_addr,
        details={
            "sample_id": str(sample.id),
            "plan_id": str(plan.id),
            "plan_version": version.version,
            "period": period.label,
            "seed": seed,
            "agents": len(candidates),
            "candidates": sample.candidates,
            "picked": sample.picked,
            # [candidates, picked] of each agent, largest first: numbers only, no names.
            "per_agent": per_agent,
        },
    )
    return sample


def run_sample(
    runtime: Catalogue,
    plan_id: uuid.UUID,
    period_text: str,
    *,
    actor: Actor,
    now: dt.datetime | None = None,
) -> SampleView:
    """The sample of the plan's current version for the period: drawn now, or the stored one.

    :class:`~recarchive.qa.periods.PeriodError` for a period that is not a
    week or month, not of the plan's kind, or not yet over;
    :class:`~recarchive.qa.plans.PlanNotFound`.
    """
    actor.require(Action.QA_SAMPLE)
    period = parse_period(period_text, runtime.settings.tz)
    now = now or utcnow()
    for attempt in (1, 2):
        try:
            with transaction(runtime.sessions) as session:
                lock_for_write(session)
                plan = session.get(Plan, plan_id)
                if plan is None:
                    raise PlanNotFound(f"no sampling plan {plan_id}")
                version = session.get(PlanVersion, (plan.id, plan.current_version))
                assert version is not None
                _check_period(period, version, now)
                sample = session.scalar(
                    select(Sample).where(
                        Sample.plan_id == plan.id,
                        Sample.plan_version == version.version,
                        Sample.period == period.label,
                    )
                )
                already = sample is not None
                if sample is None:
                    sample = _draw(session, plan, version, period, actor)
                return _view(session, sample, plan.name, already, actor, now)
        except IntegrityError:  # another run drew it first: the second attempt reads theirs
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def show_sample(
    runtime: Sessions, sample_id: uuid.UUID, *, actor: Actor, now: dt.datetime | None = None
) -> SampleView:
    """A stored sample, after withdrawing what training may no longer use."""
    actor.require(Action.QA_SAMPLE)
    now = now or utcnow()
    with transaction(runtime.sessions) as session:
        lock_for_write(session)
        sample = session.get(Sample, sample_id)
        if sample is None:
            raise SampleNotFound(f"no sample {sample_id}")
        plan = session.get(Plan, sample.plan_id)
        assert plan is not None
        return _view(session, sample, plan.name, True, actor, now)


def _view(
    session: Session, sample: Sample, plan_name: str, already: bool, actor: Actor, now: dt.datetime
) -> SampleView:
    """Withdraw, count, and show the sample's calls as the actor's role may see them."""
    assert actor.role is not None  # a staff action: the system may not (Actor.require)
    withdraw_unusable(
        session,
        now,
        actor=actor.name,
        actor_role=actor.role_name,
        client_addr=actor.client_addr,
        cause="qa.sample.view",
        sample_id=sample.id,
    )
    calls = list(session.scalars(select(SampleCall).where(SampleCall.sample_id == sample.id)))
    agents = _counts(calls)
    # The catalogue is asked again, through the same visibility rule: whatever the
    # withdrawal saw, nothing the role may not know of is ever shown.
    recordings = list(
        session.scalars(
            select(Recording)
            .join(SampleCall, SampleCall.recording_id == Recording.id)
            .where(
                SampleCall.sample_id == sample.id,
                SampleCall.picked,
                SampleCall.withdrawn_at.is_(None),
                usable_condition(now),
            )
            .options(selectinload(Recording.reasons))
            .order_by(Recording.agent, Recording.started_at, Recording.id)
        )
    )
    held = held_recording_ids(session, [r.id for r in recordings], now)
    views = tuple(
        role_view(
            r,
            actor.role,
            reasons=r.reason_codes,
            candidates=(),
            held=r.id in held,
            restricted=False,
            objected=False,
        )
        for r in recordings
    )
    if already:
        append_event(
            session,
            actor=actor.name,
            actor_role=actor.role_name,
            action="qa.sample.view",
            client_addr=actor.client_addr,
            details={"sample_id": str(sample.id), "recordings": len(views)},
        )
    session.flush()
    session.expunge(sample)
    return SampleView(sample, plan_name, already, agents, views)


def _counts(calls: list[SampleCall]) -> tuple[AgentCount, ...]:
    candidates = Counter(c.agent for c in calls)
    picked = Counter(c.agent for c in calls if c.picked)
    withdrawn = Counter(c.agent for c in calls if c.withdrawn_at is not None)
    return tuple(
        AgentCount(agent, candidates[agent], picked[agent], withdrawn[agent])
        for agent in sorted(candidates)
    )
