"""Over random agents, links and evaluations, on both catalogues: an agent's list is
exactly the submitted (or later) evaluations of the agent identifiers linked to them,
and they may hear exactly the calls among those evaluations' calls."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from recarchive.access.actors import Actor
from recarchive.access.agent_ids import link_agent_id
from recarchive.access.models import Role, User
from recarchive.access.users import add_user
from recarchive.catalogue.database import transaction, utcnow
from recarchive.lookup.events import SelfReviewAsked
from recarchive.qa.agent_access import may_self_review
from recarchive.qa.agent_reviews import acknowledge_evaluation, list_own_evaluations
from recarchive.qa.evaluations import create_evaluation
from recarchive.qa.scorecards import create_form
from recarchive.runtime import Runtime
from tests.actors import ADMIN, staff
from tests.api_fixtures import build_runtime, close_runtime
from tests.qa_fixtures import add_call

TRAINER = staff("qa-agents-property", Role.QA_TRAINER)
FORM = {
    "sections": [
        {"id": "s", "title": "S", "questions": [{"id": "q", "text": "Q?", "kind": "yes_no_na"}]}
    ]
}


@pytest.fixture(scope="module")
def runtime(catalogue_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    runtime = build_runtime(catalogue_url, Path(tmp_path_factory.mktemp("qa-agents-property")))
    yield runtime
    close_runtime(runtime)


def _agent(runtime: Runtime, name: str) -> Actor:
    add_user(runtime, name, Role.AGENT, actor=ADMIN)
    with runtime.sessions() as session:
        user_id = session.scalar(select(User.id).where(User.name == name))
    return Actor(name, Role.AGENT, "test", user_id)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_an_agents_list_is_exactly_their_linked_ids_submitted_evaluations(
    runtime: Runtime, seed: int
) -> None:
    rng = random.Random(seed)
    tag = uuid.uuid4().hex[:6]
    pool = [f"p{tag}-{i}" for i in range(5)]  # the last is never linked
    form = create_form(runtime, name=f"property-{tag}", definition=FORM, actor=TRAINER)
    version_id = form.versions[-1].id
    agents = [_agent(runtime, f"pa-{tag}-{i}") for i in range(3)]
    links: dict[str, set[str]] = {a.name: set() for a in agents}
    for agent_id in pool[:-1]:
        owner = rng.choice([*agents, None])
        if owner is not None:
            link_agent_id(runtime, owner.name, agent_id, actor=ADMIN)
            links[owner.name].add(agent_id)
    visible: dict[str, set[uuid.UUID]] = {a.name: set() for a in agents}
    playable: dict[str, set[uuid.UUID]] = {a.name: set() for a in agents}
    calls: list[uuid.UUID] = []
    for _ in range(10):
        agent_id = rng.choice(pool)
        call = add_call(runtime, agent=agent_id)
        calls.append(call)
        owner = next((a for a in agents if agent_id in links[a.name]), None)
        for _ in range(rng.randint(0, 2)):
            state = rng.choice(["draft", "submitted", "acknowledged"])
            view = create_evaluation(
                runtime,
                recording_id=call,
                form_version_id=version_id,
                answers={"q": "yes"},
                submit=state != "draft",
                actor=TRAINER,
            )
            if state == "acknowledged" and owner is not None:
                acknowledge_evaluation(runtime, view.evaluation.id, actor=owner)
            if state != "draft" and owner is not None:
                visible[owner.name].add(view.evaluation.id)
                playable[owner.name].add(call)
    for agent in agents:
        listed = {item.view.evaluation.id for item in list_own_evaluations(runtime, actor=agent)}
        assert listed == visible[agent.name]
        with transaction(runtime.sessions) as session:
            heard = {
                call
                for call in calls
                if may_self_review(SelfReviewAsked(session, agent.user_id, call, utcnow()))
            }
        assert heard == playable[agent.name]
