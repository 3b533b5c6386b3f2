"""Checking a stored sample: the draw repeated from its seed over its stored candidates.

Anyone with the ``qa.sample`` right can ask; the answer says, for each
agent, how many candidates the draw had, how many it picked, and whether
the picks are exactly the ones the seed gives (:func:`recarchive.qa.draw.draw`).
A pick changed, added or removed after the draw, or a candidate left out of
the record, shows as a mismatch. The check reads only the stored record: a
call withdrawn or deleted since is still counted as drawn, and no recording
id is shown.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from sqlalchemy import select

from recarchive.access.actors import Actor
from recarchive.access.audit import append_event
from recarchive.access.policy import Action
from recarchive.catalogue.database import transaction
from recarchive.parts import Sessions
from recarchive.qa.draw import draw
from recarchive.qa.models import Sample, SampleCall
from recarchive.qa.sampling import SampleNotFound

__all__ = ["AgentCheck", "Verification", "verify_sample"]


@dataclasses.dataclass(frozen=True)
class AgentCheck:
    agent: str
    candidates: int
    picked: int
    #: How many picks the draw gives: min(calls_per_agent, candidates).
    expected: int
    matches: bool


@dataclasses.dataclass(frozen=True)
class Verification:
    sample_id: uuid.UUID
    period: str
    seed: str
    calls_per_agent: int
    agents: tuple[AgentCheck, ...]
    #: The sample's own totals agree with its stored candidates and picks.
    totals_match: bool

    @property
    def ok(self) -> bool:
        return self.totals_match and all(a.matches for a in self.agents)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sample_id": str(self.sample_id),
            "period": self.period,
            "seed": self.seed,
            "calls_per_agent": self.calls_per_agent,
            "ok": self.ok,
            "totals_match": self.totals_match,
            "agents": [dataclasses.asdict(a) for a in self.agents],
        }


def verify_sample(runtime: Sessions, sample_id: uuid.UUID, *, actor: Actor) -> Verification:
    """Repeat the sample's draw and compare it with the stored picks (audited: ``qa.verify``)."""
    actor.require(Action.QA_SAMPLE)
    with transaction(runtime.sessions) as session:
        sample = session.get(Sample, sample_id)
        if sample is None:
            raise SampleNotFound(f"no sample {sample_id}")
        calls = list(session.scalars(select(SampleCall).where(SampleCall.sample_id == sample_id)))
        candidates: dict[str, list[uuid.UUID]] = {}
        stored: dict[str, set[uuid.UUID]] = {}
        for call in calls:
            candidates.setdefault(call.agent, []).append(call.recording_id)
            if call.picked:
                stored.setdefault(call.agent, set()).add(call.recording_id)
        per_agent = int(sample.criteria["calls_per_agent"])
        expected = draw(sample.seed, candidates, per_agent)
        agents = tuple(
            AgentCheck(
                agent,
                len(candidates[agent]),
                len(stored.get(agent, set())),
                len(expected[agent]),
                set(expected[agent]) == stored.get(agent, set()),
            )
            for agent in sorted(candidates)
        )
        totals = sample.candidates == len(calls) and sample.picked == sum(
            len(s) for s in stored.values()
        )
        result = Verification(sample.id, sample.period, sample.seed, per_agent, agents, totals)
        append_event(
            session,
            actor=actor.name,
            actor_role=actor.role_name,
            action="qa.verify",
            client_addr=actor.client_addr,
            details={"sample_id": str(sample_id), "ok": result.ok},
        )
    return result
