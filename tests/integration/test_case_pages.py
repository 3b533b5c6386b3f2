"""The case pages' routes, on SQLite and PostgreSQL: who gets a page and who the refusal,
in which language, under the CSP; the language switch; the cookie on the case routes.

The pages' behaviour in a browser is tests/browser/test_case_pages.py.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from recarchive.access.models import AuditEvent, Role
from recarchive.api.app import create_app
from recarchive.api.auth import COOKIE_NAME
from recarchive.api.i18n import LANGUAGE_COOKIE
from recarchive.api.player import CONTENT_SECURITY_POLICY
from recarchive.runtime import Runtime
from tests.api_fixtures import TestClient, build_runtime, close_runtime, tokens

BASE = "http://testserver"
SAME_SITE = {"Origin": BASE}
CASE_ROLES = (Role.DISPUTE_HANDLER, Role.PRIVACY_OFFICER)
OTHER_ROLES = (Role.QA_TRAINER, Role.AUDITOR, Role.ADMIN)


@dataclasses.dataclass
class World:
    runtime: Runtime
    tokens: dict[Role, str]
    tmp: Path


@pytest.fixture(scope="module")
def world(catalogue_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("case-pages")
    runtime = build_runtime(catalogue_url, tmp / "main")
    yield World(runtime, tokens(runtime, prefix=f"cp-{uuid.uuid4().hex[:6]}-"), tmp)
    close_runtime(runtime)


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.runtime), follow_redirects=False) as client:
        yield client


def sign_in(client: TestClient, token: str) -> None:
    response = client.post("/session", data={"token": token}, headers=SAME_SITE)
    assert response.status_code == 303, response.text


def refusals_of(world: World, role: Role) -> list[AuditEvent]:
    with world.runtime.sessions() as session:
        query = (
            select(AuditEvent)
            .where(AuditEvent.action == "access.refused", AuditEvent.actor_role == role.value)
            .order_by(AuditEvent.seq)
        )
        # Other modules' pages refuse the same roles in the same catalogue meanwhile.
        return [e for e in session.scalars(query) if e.details["route"].startswith("/player/cases")]


@pytest.mark.parametrize("role", CASE_ROLES, ids=str)
def test_case_roles_get_the_pages_in_the_default_language(
    world: World, client: TestClient, role: Role
) -> None:
    sign_in(client, world.tokens[role])
    player = client.get("/player")
    assert 'href="/player/cases"' in player.text
    listing = client.get("/player/cases")
    assert listing.status_code == 200
    assert listing.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert '<html lang="fi">' in listing.text
    assert '<h1 id="cases-title">Riita-asiat</h1>' in listing.text
    assert 'id="new-case"' in listing.text
    case_id = uuid.uuid4()
    one = client.get(f"/player/cases/{case_id}")
    assert one.status_code == 200
    assert f'data-case-id="{case_id}"' in one.text
    assert '<script type="module" src="/static/case.js' in one.text


@pytest.mark.parametrize("role", OTHER_ROLES, ids=str)
def test_other_roles_get_the_refusal_on_record_and_nothing_else(
    world: World, client: TestClient, role: Role
) -> None:
    sign_in(client, world.tokens[role])
    assert 'href="/player/cases"' not in client.get("/player").text
    before = len(refusals_of(world, role))
    for path in ("/player/cases", f"/player/cases/{uuid.uuid4()}", "/player/cases/x"):
        page = client.get(path)
        assert page.status_code == 403, path
        assert "Roolisi ei salli tätä" in page.text
        assert "case.js" not in page.text
        assert "cases.js" not in page.text
        assert "data-case-id" not in page.text
    refused = refusals_of(world, role)[before:]
    assert [r.details["route"] for r in refused] == [
        "/player/cases",
        "/player/cases/{case_id}",
        "/player/cases/{case_id}",
    ]


def test_a_page_without_a_session_goes_to_sign_in(client: TestClient) -> None:
    for path in ("/player/cases", f"/player/cases/{uuid.uuid4()}"):
        response = client.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == "/"


def test_an_address_that_names_no_case_says_so(world: World, client: TestClient) -> None:
    sign_in(client, world.tokens[Role.DISPUTE_HANDLER])
    response = client.get("/player/cases/%3Cscript%3Ealert(1)")
    assert response.status_code == 404
    assert "Asiaa ei löydy" in response.text
    assert "<script>alert" not in response.text


def test_the_switch_remembers_the_language_and_goes_back(world: World, client: TestClient) -> None:
    # A user of its own: the choice is kept with the user too.
    token = tokens(world.runtime, prefix=f"lang-{uuid.uuid4().hex[:6]}-")[Role.DISPUTE_HANDLER]
    sign_in(client, token)
    answer = client.post(
        "/language", data={"language": "en", "back": "/player/cases"}, headers=SAME_SITE
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/player/cases"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{LANGUAGE_COOKIE}=en;")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    page = client.get("/player/cases")
    assert '<html lang="en">' in page.text
    assert '<h1 id="cases-title">Dispute cases</h1>' in page.text
    assert 'value="en" lang="en" aria-label="in English"\n    aria-pressed="true"' in page.text
    client.cookies.set(LANGUAGE_COOKIE, "sv")  # not one of ours: the default again
    assert '<html lang="fi">' in client.get("/player/cases").text

    # Another browser: signing in brings the user's language with it.
    with TestClient(create_app(world.runtime), follow_redirects=False) as other:
        answer = other.post("/session", data={"token": token}, headers=SAME_SITE)
        assert f"{LANGUAGE_COOKIE}=en;" in answer.headers.get("set-cookie", "")
        assert '<html lang="en">' in other.get("/player/cases").text
    # A user who never chose keeps the installation's language when signing in.
    with TestClient(create_app(world.runtime), follow_redirects=False) as fresh:
        answer = fresh.post(
            "/session", data={"token": world.tokens[Role.PRIVACY_OFFICER]}, headers=SAME_SITE
        )
        assert LANGUAGE_COOKIE not in answer.headers.get("set-cookie", "")
        assert '<html lang="fi">' in fresh.get("/player/cases").text


@pytest.mark.parametrize(
    "back",
    [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        "player",
        "/player\r\nSet-Cookie: x=1",
    ],
)
def test_the_switch_goes_back_to_this_site_only(client: TestClient, back: str) -> None:
    answer = client.post("/language", data={"language": "fi", "back": back}, headers=SAME_SITE)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"


def test_the_switch_ignores_other_languages_and_other_sites(client: TestClient) -> None:
    answer = client.post("/language", data={"language": "sv", "back": "/"}, headers=SAME_SITE)
    assert answer.status_code == 303
    assert "set-cookie" not in answer.headers
    foreign = {"Origin": "https://evil.example"}
    refused = client.post("/language", data={"language": "en", "back": "/"}, headers=foreign)
    assert refused.status_code == 403
    assert "set-cookie" not in refused.headers


def test_the_installation_chooses_the_default_language(world: World) -> None:
    runtime = build_runtime(
        str(world.runtime.settings.catalogue_url),
        world.tmp / "english",
        extra_env={"RECARCHIVE_API_LANGUAGE": "en"},
    )
    try:
        with TestClient(create_app(runtime), follow_redirects=False) as client:
            sign_in(client, world.tokens[Role.PRIVACY_OFFICER])
            assert '<html lang="en">' in client.get("/player/cases").text
            client.cookies.set(LANGUAGE_COOKIE, "fi")
            assert '<html lang="fi">' in client.get("/player/cases").text
    finally:
        close_runtime(runtime)


def test_the_cookie_works_the_case_routes_from_this_site_only(
    world: World, client: TestClient
) -> None:
    sign_in(client, world.tokens[Role.DISPUTE_HANDLER])
    assert COOKIE_NAME in client.cookies
    body = {"reference": f"COOKIE-{uuid.uuid4().hex[:6]}", "kind": "billing"}
    opened = client.post("/api/v1/cases", json=body, headers=SAME_SITE)
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["id"]
    note = client.post(f"/api/v1/cases/{case_id}/notes", json={"text": "x"}, headers=SAME_SITE)
    assert note.status_code == 200, note.text
    for headers in ({"Origin": "https://evil.example"}, {}):
        forged = client.post(f"/api/v1/cases/{case_id}/notes", json={"text": "y"}, headers=headers)
        assert forged.status_code == 403, headers
    hold = {"recording_ids": [], "case_ref": "D-1", "reason": "x"}
    assert client.post("/api/v1/holds", json=hold, headers=SAME_SITE).status_code == 401
    texts = [n["text"] for n in client.get(f"/api/v1/cases/{case_id}").json()["notes"]]
    assert texts == ["x"]
