"""Agents as users, on both catalogues: their own evaluations and nothing else.

An agent (linked by an admin to telephony agent identifiers) sees and hears
only their own submitted evaluations' calls: not their unevaluated calls, not
another agent's, not drafts, not an objected call; each refusal is the 404 of
an unknown id. They acknowledge, dispute once within the window, a trainer
answers, and the evaluation records both; the audit log has ids, never the
comments. The role matrix is in test_api_matrix.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from recarchive.access.actors import Actor
from recarchive.access.models import AuditEvent, Role, User
from recarchive.access.users import add_user
from recarchive.catalogue.database import utcnow
from recarchive.catalogue.restrictions import RestrictionKind
from recarchive.qa.agent_reviews import ResponseRefused, dispute_evaluation
from recarchive.runtime import Runtime
from tests.actors import ADMIN
from tests.api_fixtures import (
    ApiClient,
    RoleClient,
    add_customer,
    add_recording,
    bearer,
    build_runtime,
    close_runtime,
    leaks,
    national,
    new_number,
    tokens,
)
from tests.qa_fixtures import exclude

Q, AG, ADM = Role.QA_TRAINER, Role.AGENT, Role.ADMIN
MY = "/api/v1/qa/my/evaluations"
EVALUATIONS = "/api/v1/qa/evaluations"
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "qa-form.json"
ANSWERS = {
    "greeting": "yes",
    "identity": "yes",
    "understood": 4,
    "accurate": "yes",
    "hold": "na",
    "summary": "no",
    "remarks": "Clear.",
}
SECRET = "dispute-text-never-audited"


@dataclasses.dataclass
class World:
    runtime: Runtime
    api: ApiClient
    form_version_id: str
    #: The second agent-role user's client.
    other: RoleClient
    customer: str


@pytest.fixture(scope="module")
def world(catalogue_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    runtime = build_runtime(catalogue_url, tmp_path_factory.mktemp("qa-agents-api"))
    api = ApiClient(runtime, tokens(runtime, prefix="ag-"))
    form = api.as_role(Q).post("/api/v1/qa/forms", json=_example())
    assert form.status_code == 201, form.text
    other_token = add_user(runtime, "ag-other", AG, actor=ADMIN).token
    other = RoleClient(api.client, other_token)
    customer = f"C-{uuid.uuid4().hex[:6]}"
    yield World(runtime, api, form.json()["current_version_id"], other, customer)
    api.close()
    close_runtime(runtime)


def _example() -> Any:
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


def _link(world: World, user: str, agent_id: str) -> None:
    linked = world.api.as_role(ADM).post(
        f"/api/v1/users/{user}/agent-ids", json={"agent_id": agent_id}
    )
    assert linked.status_code == 201, linked.text
    assert agent_id in linked.json()["agent_ids"]


def _call(world: World, agent: str) -> str:
    number = new_number()
    customer = f"{world.customer}-{uuid.uuid4().hex[:4]}"
    add_customer(world.runtime, customer, "Agent Test Customer", [national(number)])
    recording = add_recording(
        world.runtime, agent=agent, customer_id=customer, caller_number=national(number)
    )
    return str(recording.id)


def _evaluate(world: World, recording_id: str, *, submit: bool = True) -> str:
    made = world.api.as_role(Q).post(
        EVALUATIONS,
        json={
            "recording_id": recording_id,
            "form_version_id": world.form_version_id,
            "answers": ANSWERS,
            "submit": submit,
        },
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def _play(client: RoleClient, recording_id: str, purpose: str = "self_review") -> Any:
    return client.get(f"/api/v1/recordings/{recording_id}/audio", params={"purpose": purpose})


def _same_404(refused: Any, asked: str, unknown: Any, nobody: str) -> None:
    assert refused.status_code == unknown.status_code == 404, refused.text
    assert refused.text.replace(asked, "X") == unknown.text.replace(nobody, "X")


def test_an_agent_sees_and_hears_only_their_own_evaluated_calls(world: World) -> None:
    tag = uuid.uuid4().hex[:6]
    mine, theirs = f"a-{tag}", f"b-{tag}"
    _link(world, "ag-agent", mine)
    _link(world, "ag-other", theirs)
    evaluated = _call(world, mine)
    unevaluated = _call(world, mine)
    drafted = _call(world, mine)
    objected = _call(world, mine)
    others = _call(world, theirs)
    own = _evaluate(world, evaluated)
    draft = _evaluate(world, drafted, submit=False)
    hidden = _evaluate(world, objected)
    exclude(world.runtime, RestrictionKind.OBJECTION, recording_id=uuid.UUID(objected))
    foreign = _evaluate(world, others)
    agent = world.api.as_role(AG)

    listed = agent.get(MY)
    assert listed.status_code == 200, listed.text
    assert {e["id"] for e in listed.json()["items"]} == {own, hidden}
    assert {e["id"] for e in world.other.get(MY).json()["items"]} == {foreign}

    played = _play(agent, evaluated)
    assert played.status_code == 200, played.text
    assert played.content[:4] == b"RIFF"
    nobody = str(uuid.uuid4())
    unknown = _play(agent, nobody)
    for refused in (unevaluated, drafted, objected, others):
        _same_404(_play(agent, refused), refused, unknown, nobody)
    _same_404(world.other.get(f"{MY}/{own}"), own, world.other.get(f"{MY}/{nobody}"), nobody)
    _same_404(agent.get(f"{MY}/{draft}"), draft, agent.get(f"{MY}/{nobody}"), nobody)
    refused_ack = world.other.post(f"{MY}/{own}/acknowledge")
    _same_404(refused_ack, own, world.other.post(f"{MY}/{nobody}/acknowledge"), nobody)

    assert _play(agent, evaluated, "training").status_code == 403
    assert agent.get("/api/v1/recordings", params={"agent": mine}).status_code == 403
    assert agent.get(f"/api/v1/recordings/{evaluated}").status_code == 403
    shown = agent.get(f"{MY}/{own}")
    assert shown.status_code == 200
    for text in (listed.text, shown.text):
        assert world.customer not in text
        assert "Agent Test Customer" not in text
        assert not leaks(text)
    with world.runtime.sessions() as session:
        plays = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "play", AuditEvent.actor == "ag-agent")
        ).all()
    assert [(str(e.recording_id), e.purpose) for e in plays] == [(evaluated, "self_review")]


def test_an_agent_without_a_link_sees_nothing(world: World) -> None:
    token = add_user(world.runtime, f"ag-unlinked-{uuid.uuid4().hex[:4]}", AG, actor=ADMIN).token
    recording = _call(world, f"u-{uuid.uuid4().hex[:6]}")
    _evaluate(world, recording)
    headers = bearer(token)
    assert world.api.client.get(MY, headers=headers).json()["items"] == []
    played = world.api.client.get(
        f"/api/v1/recordings/{recording}/audio", params={"purpose": "self_review"}, headers=headers
    )
    assert played.status_code == 404


def test_acknowledge_dispute_once_and_the_trainers_answer_are_recorded(world: World) -> None:
    mine = f"a-{uuid.uuid4().hex[:6]}"
    _link(world, "ag-agent", mine)
    first, second = _evaluate(world, _call(world, mine)), _evaluate(world, _call(world, mine))
    agent, trainer = world.api.as_role(AG), world.api.as_role(Q)

    acknowledged = agent.post(f"{MY}/{first}/acknowledge")
    assert acknowledged.status_code == 200, acknowledged.text
    assert acknowledged.json()["status"] == "acknowledged"
    assert agent.post(f"{MY}/{first}/acknowledge").status_code == 409
    revised = trainer.request(
        "PUT", f"{EVALUATIONS}/{first}", json={"answers": {**ANSWERS, "accurate": "no"}}
    )
    assert revised.json()["status"] == "submitted"  # a new version needs a new acknowledgement
    assert agent.post(f"{MY}/{first}/acknowledge").json()["status"] == "acknowledged"

    listed = agent.get(MY).json()["items"]
    assert next(e for e in listed if e["id"] == second)["dispute_until"] is not None
    assert agent.post(f"{MY}/{second}/dispute", json={"comment": "   "}).status_code == 422
    disputed = agent.post(f"{MY}/{second}/dispute", json={"comment": f"  {SECRET}  "})
    assert disputed.status_code == 200, disputed.text
    assert (disputed.json()["status"], disputed.json()["dispute_until"]) == ("disputed", None)
    again = agent.post(f"{MY}/{second}/dispute", json={"comment": "again"})
    assert again.status_code == 409
    assert "once" in again.json()["error"]["message"]
    assert agent.post(f"{MY}/{first}/dispute", json={"comment": "late"}).status_code == 409

    to_answer = trainer.get(EVALUATIONS, params={"status": "disputed"}).json()["items"]
    assert second in [e["id"] for e in to_answer]
    assert first not in [e["id"] for e in to_answer]
    answered = trainer.post(f"{EVALUATIONS}/{second}/answer", json={"comment": "Heard: fair."})
    assert answered.status_code == 200, answered.text
    assert answered.json()["status"] == "dispute_answered"
    assert trainer.post(f"{EVALUATIONS}/{second}/answer", json={"comment": "x"}).status_code == 409
    assert agent.post(f"{EVALUATIONS}/{second}/answer", json={"comment": "x"}).status_code == 403

    for shown in (
        agent.get(f"{MY}/{second}").json(),
        trainer.get(f"{EVALUATIONS}/{second}").json(),
    ):
        kinds = [(r["kind"], r["version"], r["comment"], r["by"]) for r in shown["responses"]]
        assert kinds == [
            ("dispute", 1, SECRET, "ag-agent"),
            ("answer", 1, "Heard: fair.", "ag-qa_trainer"),
        ]
    revised = trainer.request("PUT", f"{EVALUATIONS}/{second}", json={"answers": ANSWERS})
    assert revised.json()["status"] == "submitted"
    refused = agent.post(f"{MY}/{second}/dispute", json={"comment": "a second time"})
    assert refused.status_code == 409  # one dispute per evaluation, not per version

    with world.runtime.sessions() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action.like("qa.evaluation.%"))
        ).all()
    actions = {e.action for e in events}
    assert {"qa.evaluation.acknowledge", "qa.evaluation.dispute", "qa.evaluation.answer"} <= actions
    assert "qa.evaluation.view" in {e.action for e in events if e.actor == "ag-agent"}
    for event in events:
        assert SECRET not in json.dumps(event.details)
        assert "Heard" not in json.dumps(event.details)


def test_a_dispute_after_the_window_is_refused(world: World) -> None:
    mine = f"a-{uuid.uuid4().hex[:6]}"
    _link(world, "ag-agent", mine)
    evaluation = uuid.UUID(_evaluate(world, _call(world, mine)))
    with world.runtime.sessions() as session:
        user_id = session.scalar(select(User.id).where(User.name == "ag-agent"))
    actor = Actor("ag-agent", AG, "test", user_id)
    window = world.runtime.settings.qa.dispute_window_days
    late = utcnow() + dt.timedelta(days=window, minutes=1)
    with pytest.raises(ResponseRefused, match="window"):
        dispute_evaluation(world.runtime, evaluation, "too late", actor=actor, now=late)
    in_time = utcnow() + dt.timedelta(days=window - 1)
    view = dispute_evaluation(world.runtime, evaluation, "in time", actor=actor, now=in_time)
    assert view.view.evaluation.status.value == "disputed"


def test_an_admin_links_and_unlinks_agent_ids(world: World) -> None:
    admin = world.api.as_role(ADM)
    agent_id = f"l-{uuid.uuid4().hex[:6]}"
    _link(world, "ag-agent", agent_id)
    taken = admin.post("/api/v1/users/ag-other/agent-ids", json={"agent_id": agent_id})
    assert taken.status_code == 409
    not_agent = admin.post("/api/v1/users/ag-qa_trainer/agent-ids", json={"agent_id": "z-1"})
    assert not_agent.status_code == 409
    users = admin.get("/api/v1/users").json()["items"]
    assert agent_id in next(u for u in users if u["name"] == "ag-agent")["agent_ids"]
    gone = admin.request("DELETE", f"/api/v1/users/ag-agent/agent-ids/{agent_id}")
    assert gone.status_code == 200, gone.text
    assert agent_id not in gone.json()["agent_ids"]
    again = admin.request("DELETE", f"/api/v1/users/ag-agent/agent-ids/{agent_id}")
    assert again.status_code == 404
    with world.runtime.sessions() as session:
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.action.like("users.agent_%"))
        ).all()
    assert {"users.agent_link", "users.agent_unlink"} <= set(actions)
