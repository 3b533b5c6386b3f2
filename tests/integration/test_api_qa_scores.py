"""``/api/v1/qa/forms`` and ``/api/v1/qa/evaluations`` on both catalogues.

The example form of docs/qa.md, a call scored and rescored over HTTP, the
score never taken from the client, clear 422s naming the question, a 404
for an objected call that reads as for an unknown id, and nothing in an
answer that says who called. The role matrix is in test_api_matrix.py.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recarchive.access.models import Role
from recarchive.catalogue.restrictions import RestrictionKind
from recarchive.runtime import Runtime
from tests.api_fixtures import (
    ApiClient,
    add_customer,
    add_recording,
    build_runtime,
    close_runtime,
    leaks,
    national,
    new_number,
    tokens,
)
from tests.qa_fixtures import exclude

Q = Role.QA_TRAINER
FORMS = "/api/v1/qa/forms"
EVALUATIONS = "/api/v1/qa/evaluations"
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "qa-form.json"
ANSWERS = {
    "greeting": "yes",
    "identity": "yes",
    "understood": 4,
    "accurate": "yes",
    "hold": "na",
    "summary": "no",
    "remarks": "Clear and friendly.",
}


@dataclasses.dataclass
class World:
    runtime: Runtime
    api: ApiClient
    customer: str
    recording_id: str
    form: dict[str, Any]


@pytest.fixture(scope="module")
def world(catalogue_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    runtime = build_runtime(catalogue_url, tmp_path_factory.mktemp("qa-scores-api"))
    number = new_number()
    customer = f"C-{uuid.uuid4().hex[:6]}"
    add_customer(runtime, customer, "Score Api Customer", [national(number)])
    recording = add_recording(
        runtime,
        agent="agent-api",
        queue="service-q",
        customer_id=customer,
        caller_number=national(number),
    )
    api = ApiClient(runtime, tokens(runtime))
    body = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    created = api.as_role(Q).post(FORMS, json=body)
    assert created.status_code == 201, created.text
    yield World(runtime, api, customer, str(recording.id), created.json())
    api.close()
    close_runtime(runtime)


def _evaluate(world: World, **body: Any) -> Any:
    payload = {
        "recording_id": world.recording_id,
        "form_version_id": world.form["current_version_id"],
        "answers": ANSWERS,
        **body,
    }
    return world.api.as_role(Q).post(EVALUATIONS, json=payload)


def test_the_example_form_is_created_listed_shown_and_revised(world: World) -> None:
    trainer = world.api.as_role(Q)
    form = world.form
    assert (form["name"], form["version"]) == ("Customer service call", 1)
    sections = form["versions"][0]["definition"]["sections"]
    assert [s["id"] for s in sections] == ["opening", "handling", "closing"]
    assert form["id"] in [f["id"] for f in trainer.get(FORMS).json()["items"]]
    definition = form["versions"][0]["definition"]
    revised = trainer.post(f"{FORMS}/{form['id']}/versions", json=definition)
    assert revised.status_code == 201, revised.text
    shown = trainer.get(f"{FORMS}/{form['id']}").json()
    assert [v["version"] for v in shown["versions"]] == [1, 2]
    assert shown["versions"][0] == form["versions"][0]
    assert shown["current_version_id"] != form["current_version_id"]
    taken = trainer.post(FORMS, json=json.loads(EXAMPLE.read_text(encoding="utf-8")))
    assert taken.status_code == 409
    assert trainer.get(f"{FORMS}/{uuid.uuid4()}").status_code == 404


def test_a_call_is_scored_rescored_and_every_version_kept(world: World) -> None:
    trainer = world.api.as_role(Q)
    made = _evaluate(world)
    assert made.status_code == 201, made.text
    data = made.json()
    assert (data["score"], data["status"], data["version"]) == (82.5, "draft", 1)
    assert (data["agent"], data["queue"]) == ("agent-api", "service-q")
    changed = trainer.request(
        "PUT",
        f"{EVALUATIONS}/{data['id']}",
        json={"answers": {**ANSWERS, "accurate": "no"}, "submit": True},
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["score"], changed.json()["status"]) == (30.0, "submitted")
    assert trainer.get(f"{EVALUATIONS}/{data['id']}").json()["version"] == 2
    versions = trainer.get(f"{EVALUATIONS}/{data['id']}/versions").json()["items"]
    assert [(v["version"], v["score"], v["superseded"]) for v in versions] == [
        (1, 82.5, True),
        (2, 30.0, False),
    ]
    by_call = trainer.get(EVALUATIONS, params={"recording_id": world.recording_id}).json()
    assert data["id"] in [e["id"] for e in by_call["items"]]
    by_agent = trainer.get(EVALUATIONS, params={"agent": "agent-api"}).json()
    assert data["id"] in [e["id"] for e in by_agent["items"]]
    assert trainer.get(EVALUATIONS, params={"agent": "nobody"}).json()["items"] == []
    texts = [made.text, changed.text, json.dumps(versions), json.dumps(by_call)]
    for text in texts:
        assert world.customer not in text
        assert "Score Api Customer" not in text
        assert not leaks(text)


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"score": 100}, 422, "score"),
        ({"answers": {**ANSWERS, "ghost": "yes"}}, 422, "'ghost' is not in this form"),
        ({"answers": {**ANSWERS, "understood": 6}}, 422, "'understood' takes a whole number"),
        ({"answers": {"greeting": "yes"}}, 422, "'identity' needs an answer"),
        ({"answers": {str(n): "yes" for n in range(500)}}, 422, "answers"),
        ({"form_version_id": str(uuid.uuid4())}, 404, "no scorecard form version"),
    ],
)
def test_nasty_evaluations_are_refused_clearly(
    world: World, body: dict[str, Any], status: int, fragment: str
) -> None:
    response = _evaluate(world, **body)
    assert response.status_code == status, response.text
    assert fragment in response.text


def test_nasty_forms_are_refused_naming_the_problem(world: World) -> None:
    trainer = world.api.as_role(Q)
    question = {"id": "q", "text": "Q?", "kind": "yes_no_na"}
    bad = [
        ({"name": "dup", "sections": [{"id": "s", "title": "S", "questions": [question] * 2}]},
         "'q' is used twice"),
        ({"name": "huge", "sections": [
            {"id": f"s{n}", "title": "S", "questions": [{**question, "id": f"q{n}-{m}"}
                                                        for m in range(10)]}
            for n in range(30)]}, "at most 200 questions"),
        ({"name": "scale", "sections": [{"id": "s", "title": "S", "questions": [
            {**question, "kind": "scale", "min": 5, "max": 1}]}]}, "'q'"),
        ({"name": "weights", "sections": [{"id": "s", "title": "S", "questions": [
            {**question, "weight": -2}]}]}, "weight"),
    ]  # fmt: skip
    for body, fragment in bad:
        response = trainer.post(FORMS, json=body)
        assert response.status_code == 422, response.text
        assert fragment in response.text
    assert "dup" not in [f["name"] for f in trainer.get(FORMS).json()["items"]]


def test_an_objected_call_reads_as_unknown(world: World) -> None:
    customer = f"C-{uuid.uuid4().hex[:6]}"
    number = new_number()
    add_customer(world.runtime, customer, "Objecting Customer", [national(number)])
    hidden = add_recording(
        world.runtime, agent="agent-api", customer_id=customer, caller_number=national(number)
    )
    exclude(world.runtime, RestrictionKind.OBJECTION, customer_id=customer)
    unknown = str(uuid.uuid4())
    refused = _evaluate(world, recording_id=str(hidden.id))
    nobody = _evaluate(world, recording_id=unknown)
    assert refused.status_code == nobody.status_code == 404
    assert refused.text.replace(str(hidden.id), "X") == nobody.text.replace(unknown, "X")
