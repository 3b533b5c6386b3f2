"""``recarchive users agent-link|show``, ``qa my-evaluations|acknowledge|dispute|answer``
as an admin, an agent and a QA trainer run them (in-process, each with their own token)."""

from __future__ import annotations

import json
import uuid

from recarchive.access.models import Role
from recarchive.qa.evaluations import create_evaluation
from recarchive.qa.scorecards import create_form
from tests.actors import staff
from tests.functional.helpers import Result, Runner
from tests.functional.test_qa_cli import World
from tests.functional.test_qa_cli import world as world  # the module's catalogue and tokens
from tests.qa_fixtures import add_call

FORM = {
    "sections": [
        {"id": "s", "title": "S", "questions": [{"id": "q", "text": "Q?", "kind": "yes_no_na"}]}
    ]
}


def ok(result: Result) -> Result:
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result


def test_an_agent_acknowledges_disputes_once_and_the_trainer_answers(
    world: World, run_cli: Runner
) -> None:
    admin, agent = world.as_role(Role.ADMIN), world.as_role(Role.AGENT)
    trainer = world.as_role(Role.QA_TRAINER)
    agent_id = f"cli-{uuid.uuid4().hex[:6]}"
    ok(run_cli("users", "agent-link", "agent", agent_id, env=admin))
    assert agent_id in ok(run_cli("users", "show", "agent", env=admin)).stdout
    listed = ok(run_cli("users", "list", env=admin)).stdout
    assert any(line.startswith("agent ") and agent_id in line for line in listed.splitlines())

    actor = staff("cli-trainer", Role.QA_TRAINER)
    form = create_form(world.runtime, name=f"cli-{agent_id}", definition=FORM, actor=actor)
    ids = []
    for _ in range(2):
        view = create_evaluation(
            world.runtime,
            recording_id=add_call(world.runtime, agent=agent_id),
            form_version_id=form.versions[0].id,
            answers={"q": "yes"},
            submit=True,
            actor=actor,
        )
        ids.append(str(view.evaluation.id))
    mine = ok(run_cli("qa", "my-evaluations", "--json", env=agent)).stdout.splitlines()
    assert sorted(json.loads(line)["id"] for line in mine) == sorted(ids)

    acknowledged = ok(run_cli("qa", "acknowledge", ids[0], env=agent))
    assert "acknowledged" in acknowledged.stdout.splitlines()[0]
    disputed = ok(run_cli("qa", "dispute", ids[1], "--comment", "Not fair", env=agent))
    assert "dispute (v1) by agent: Not fair" in disputed.stdout
    again = run_cli("qa", "dispute", ids[1], "--comment", "Again", env=agent)
    assert again.returncode == 1
    assert "once" in again.stderr
    answered = ok(run_cli("qa", "answer", ids[1], "--comment", "Reviewed", env=trainer))
    assert "dispute_answered" in answered.stdout.splitlines()[0]
    assert "answer (v1) by qa_trainer: Reviewed" in answered.stdout
    refused = run_cli("qa", "acknowledge", str(uuid.uuid4()), env=agent)
    assert refused.returncode == 1
    assert "no evaluation" in refused.stderr
