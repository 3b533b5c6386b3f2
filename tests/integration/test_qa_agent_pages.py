"""The agent's pages and the disputes page, on SQLite and PostgreSQL: an agent gets
``/player/my`` (and lands there after signing in: an agent may not search), a QA trainer
the disputes page, each in Finnish (the default) and English under the CSP; every other
role the refusal, on record. The cookie acknowledges and disputes from this site only.

The pages' behaviour in a browser is tests/browser/test_qa_agent_walk.py.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from recarchive.access.agent_ids import link_agent_id
from recarchive.access.models import AuditEvent, Role
from recarchive.api.app import create_app
from recarchive.api.i18n import LANGUAGE_COOKIE
from recarchive.api.player import CONTENT_SECURITY_POLICY
from recarchive.runtime import Runtime
from tests.actors import ADMIN
from tests.api_fixtures import (
    TestClient,
    add_recording,
    bearer,
    build_runtime,
    close_runtime,
    tokens,
)

SAME_SITE = {"Origin": "http://testserver"}
FOREIGN = {"Origin": "https://evil.example"}
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "qa-form.json"
MY = "/api/v1/qa/my/evaluations"
ANSWERS = {
    "greeting": "yes",
    "identity": "yes",
    "understood": 4,
    "accurate": "yes",
    "hold": "na",
    "summary": "no",
    "remarks": "Selkeä.",
}


@dataclasses.dataclass
class World:
    runtime: Runtime
    tokens: dict[Role, str]
    prefix: str
    agent_id: str
    form_version_id: str

    def evaluation(self, client: TestClient) -> str:
        """A submitted evaluation of a new call of the linked agent."""
        recording = add_recording(self.runtime, agent=self.agent_id, queue="billing")
        body = {
            "recording_id": str(recording.id),
            "form_version_id": self.form_version_id,
            "answers": ANSWERS,
            "submit": True,
        }
        made = client.post(
            "/api/v1/qa/evaluations", json=body, headers=bearer(self.tokens[Role.QA_TRAINER])
        )
        assert made.status_code == 201, made.text
        return str(made.json()["id"])


@pytest.fixture(scope="module")
def world(catalogue_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    runtime = build_runtime(catalogue_url, tmp_path_factory.mktemp("qa-agent-pages"))
    prefix = f"qap-{uuid.uuid4().hex[:6]}-"
    role_tokens = tokens(runtime, prefix=prefix)
    agent_id = f"agent-{uuid.uuid4().hex[:6]}"
    link_agent_id(runtime, f"{prefix}agent", agent_id, actor=ADMIN)
    with TestClient(create_app(runtime)) as client:
        form = json.loads(EXAMPLE.read_text(encoding="utf-8"))
        made = client.post(
            "/api/v1/qa/forms", json=form, headers=bearer(role_tokens[Role.QA_TRAINER])
        )
        assert made.status_code == 201, made.text
    yield World(runtime, role_tokens, prefix, agent_id, made.json()["current_version_id"])
    close_runtime(runtime)


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.runtime), follow_redirects=False) as client:
        yield client


def sign_in(client: TestClient, token: str) -> str:
    """Sign in; where the sign-in sends the browser."""
    response = client.post("/session", data={"token": token}, headers=SAME_SITE)
    assert response.status_code == 303, response.text
    return str(response.headers["location"])


def refusals_of(world: World, role: Role) -> list[AuditEvent]:
    with world.runtime.sessions() as session:
        query = select(AuditEvent).where(
            AuditEvent.action == "access.refused", AuditEvent.actor_role == role.value
        )
        return list(session.scalars(query.order_by(AuditEvent.seq)))


def test_an_agent_lands_on_their_evaluations_in_finnish_then_english(
    world: World, client: TestClient
) -> None:
    evaluation_id = world.evaluation(client)
    assert sign_in(client, world.tokens[Role.AGENT]) == "/player/my"
    assert client.get("/").headers["location"] == "/player/my"
    search = client.get("/player")  # an agent may not search
    assert search.status_code == 303
    assert search.headers["location"] == "/player/my"
    pages = (
        ("/player/my", "qa_my.js", "Omat arviointini", "My evaluations"),
        (
            f"/player/my/evaluations/{evaluation_id}",
            "qa_my_evaluation.js",
            "Puhelusi arviointi",
            "Evaluation of your call",
        ),
    )
    for language in ("fi", "en"):
        client.cookies.set(LANGUAGE_COOKIE, language)
        for path, script, finnish, english in pages:
            page = client.get(path)
            assert page.status_code == 200, path
            assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
            assert f'<html lang="{language}">' in page.text
            assert f">{finnish if language == 'fi' else english}</h1>" in page.text, path
            assert f'src="/static/{script}' in page.text
            assert 'href="/player/my"' in page.text
            assert 'href="/player/qa"' not in page.text
            assert 'href="/player"' not in page.text  # no search link for an agent
    detail = client.get(f"/player/my/evaluations/{evaluation_id}").text
    assert f'data-evaluation-id="{evaluation_id}"' in detail
    assert '"qa.my.audio.gone": ' in detail  # the script's words come with the page
    wrong = client.get("/player/my/evaluations/%3Cscript%3E")
    assert wrong.status_code == 404
    assert "<script>" not in wrong.text


def test_the_agent_api_gives_one_evaluation_its_form_definition(
    world: World, client: TestClient
) -> None:
    evaluation_id = world.evaluation(client)
    agent = bearer(world.tokens[Role.AGENT])
    one = client.get(f"{MY}/{evaluation_id}", headers=agent).json()
    sections = one["form_definition"]["sections"]
    questions = {q["id"]: q["text"] for s in sections for q in s["questions"]}
    assert set(ANSWERS) <= set(questions)
    listed = client.get(MY, headers=agent).json()["items"]
    assert {item["form_definition"] for item in listed} == {None}


def test_a_trainer_gets_the_disputes_page_and_its_link(world: World, client: TestClient) -> None:
    assert sign_in(client, world.tokens[Role.QA_TRAINER]) == "/player"
    assert client.get("/player").status_code == 200
    for language, heading in (("fi", "Kiistetyt arvioinnit"), ("en", "Disputed evaluations")):
        client.cookies.set(LANGUAGE_COOKIE, language)
        page = client.get("/player/qa/disputes")
        assert page.status_code == 200
        assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert f">{heading}</h1>" in page.text
        assert 'src="/static/qa_disputes.js' in page.text
        assert 'href="/player/qa/disputes"' in client.get("/player/qa").text


@pytest.mark.parametrize("role", tuple(Role), ids=str)
def test_each_page_refuses_the_roles_it_is_not_for_on_record(
    world: World, client: TestClient, role: Role
) -> None:
    sign_in(client, world.tokens[role])
    before = len(refusals_of(world, role))
    pages = {
        "/player/my": Role.AGENT,
        f"/player/my/evaluations/{uuid.uuid4()}": Role.AGENT,
        "/player/qa/disputes": Role.QA_TRAINER,
    }
    refused_routes = []
    for path, meant_for in pages.items():
        page = client.get(path)
        if role is meant_for:
            assert page.status_code == 200, path
            continue
        assert page.status_code == 403, path
        assert "Roolisi ei salli tätä" in page.text
        assert "qa_my" not in page.text
        assert "qa_disputes.js" not in page.text
        refused_routes.append(path)
    refused = refusals_of(world, role)[before:]
    expected = [
        "/player/my/evaluations/{evaluation_id}" if "/evaluations/" in path else path
        for path in refused_routes
    ]
    assert [r.details["route"] for r in refused] == expected


def test_a_page_without_a_session_goes_to_sign_in(client: TestClient) -> None:
    for path in ("/player/my", f"/player/my/evaluations/{uuid.uuid4()}", "/player/qa/disputes"):
        response = client.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == "/"


def test_the_cookie_acknowledges_disputes_and_answers_from_this_site_only(
    world: World, client: TestClient
) -> None:
    first, second = world.evaluation(client), world.evaluation(client)
    sign_in(client, world.tokens[Role.AGENT])
    dispute = {"comment": "En ole samaa mieltä."}
    writes = [(f"{MY}/{first}/acknowledge", None), (f"{MY}/{second}/dispute", dispute)]
    for path, body in writes:
        for headers in (FOREIGN, {}):
            assert client.post(path, json=body, headers=headers).status_code == 403, path
        ours = client.post(path, json=body, headers=SAME_SITE)
        assert ours.status_code == 200, ours.text
    assert client.get(f"{MY}/{first}").json()["status"] == "acknowledged"
    assert client.get(f"{MY}/{second}").json()["status"] == "disputed"

    client.cookies.clear()
    sign_in(client, world.tokens[Role.QA_TRAINER])
    answer = f"/api/v1/qa/evaluations/{second}/answer"
    assert client.post(answer, json={"comment": "Katsotaan."}, headers=FOREIGN).status_code == 403
    answered = client.post(answer, json={"comment": "Katsotaan."}, headers=SAME_SITE)
    assert answered.status_code == 200, answered.text
    assert answered.json()["status"] == "dispute_answered"
