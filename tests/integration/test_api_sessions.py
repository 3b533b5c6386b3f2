"""Web-player sessions and the Origin check, on SQLite and PostgreSQL.

The cookie holds a session's secret (stored hashed), never the token; each
request checks the session, its idle and absolute limits and its token;
sign-out deletes it; posts that carry it, and every sign-in and sign-out,
must come from this site. ``/docs`` is served from installed files.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from recarchive.access.audit import verify_chain
from recarchive.access.models import AuditEvent, Role, WebSession
from recarchive.access.services import InvalidToken, authenticate
from recarchive.access.sessions import SessionEnded, open_session, resume_session
from recarchive.access.users import add_user, disable_user, revoke_token
from recarchive.api.app import create_app
from recarchive.api.auth import COOKIE_NAME
from recarchive.catalogue.database import transaction, utcnow
from recarchive.runtime import Runtime
from tests.actors import ADMIN
from tests.api_fixtures import TestClient, add_recording, bearer, build_runtime, close_runtime

BASE = "http://testserver"
SAME_SITE = {"Origin": BASE}


@dataclasses.dataclass
class World:
    runtime: Runtime
    recording: str
    catalogue_url: str
    tmp: Path


@pytest.fixture(scope="module")
def world(catalogue_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("sessions")
    runtime = build_runtime(catalogue_url, tmp / "main")
    recording = add_recording(runtime, customer_id="C-7", reasons=["billing"])
    yield World(runtime, str(recording.id), catalogue_url, tmp)
    close_runtime(runtime)


_users = iter(range(10_000))


def new_token(world: World, role: Role = Role.DISPUTE_HANDLER) -> tuple[str, str]:
    name = f"sess-{next(_users)}"
    return name, add_user(world.runtime, name, role, actor=ADMIN).token


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.runtime), follow_redirects=False) as client:
        yield client


def sign_in(client: TestClient, token: str, headers: dict[str, str] | None = None) -> str:
    response = client.post(
        "/session", data={"token": token}, headers=SAME_SITE if headers is None else headers
    )
    assert response.status_code == 303, response.text
    cookie = client.cookies[COOKIE_NAME]
    return str(cookie)


def sessions_of(world: World) -> list[WebSession]:
    with world.runtime.sessions() as session:
        return list(session.scalars(select(WebSession)))


def audited(world: World, action: str) -> list[AuditEvent]:
    with world.runtime.sessions() as session:
        statement = select(AuditEvent).where(AuditEvent.action == action)
        return list(session.scalars(statement.order_by(AuditEvent.seq)))


def test_the_cookie_holds_a_session_not_the_token(world: World, client: TestClient) -> None:
    name, token = new_token(world)
    response = client.post("/session", data={"token": token}, headers=SAME_SITE)
    assert response.status_code == 303
    header = response.headers["set-cookie"]
    cookie = client.cookies[COOKIE_NAME]
    assert token not in header
    assert cookie not in token
    attributes = {part.strip().split("=")[0].lower() for part in header.split(";")}
    assert {"httponly", "path", "max-age"} <= attributes
    assert "samesite=strict" in header.lower()
    assert "Path=/" in header
    assert "secure" not in attributes  # api.secure_cookies is off here
    digest = hashlib.sha256(cookie.encode()).hexdigest()
    assert digest in {row.secret_hash for row in sessions_of(world)}
    assert cookie not in {row.secret_hash for row in sessions_of(world)}
    me = client.get("/api/v1/me")
    assert me.status_code == 200
    assert me.json()["user"] == name
    assert client.get(f"/api/v1/recordings/{world.recording}").status_code == 200
    assert audited(world, "session.start")[-1].actor == name


def test_secure_cookies_are_marked_secure(world: World) -> None:
    runtime = build_runtime(
        world.catalogue_url,
        world.tmp / "secure",
        extra_env={"RECARCHIVE_API_SECURE_COOKIES": "true"},
    )
    try:
        _name, token = new_token(world)
        with TestClient(create_app(runtime), follow_redirects=False) as client:
            response = client.post("/session", data={"token": token}, headers=SAME_SITE)
            assert response.status_code == 303
            assert "secure" in response.headers["set-cookie"].lower()
            # Behind a TLS proxy the browser's Origin says https.
            end = client.post("/session/end", headers={"Origin": "https://testserver"})
            assert end.status_code == 303
    finally:
        close_runtime(runtime)


def test_sign_out_ends_the_session_and_a_replayed_cookie_is_refused(
    world: World, client: TestClient
) -> None:
    _name, token = new_token(world)
    cookie = sign_in(client, token)
    count = len(sessions_of(world))
    response = client.post("/session/end", headers=SAME_SITE)
    assert response.status_code == 303
    assert len(sessions_of(world)) == count - 1
    assert audited(world, "session.end")[-1].details["reason"] == "signed_out"
    with TestClient(create_app(world.runtime), follow_redirects=False) as replay:
        replay.cookies.set(COOKIE_NAME, cookie)
        refused = replay.get("/api/v1/me")
        assert refused.status_code == 401
        assert replay.get("/player").headers["location"] == "/"
    last = audited(world, "auth.refused")[-1]
    assert last.details["reason"] == "unknown_session"
    assert cookie not in str(last.details)
    # The token itself is untouched: scripts go on working.
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200


def test_the_cookie_changes_nothing(world: World, client: TestClient) -> None:
    _name, token = new_token(world)
    sign_in(client, token)
    body = {"recording_ids": [world.recording], "case_ref": "D-9", "reason": "dispute"}
    response = client.post("/api/v1/holds", json=body, headers=SAME_SITE)
    assert response.status_code == 401  # from this site, but the cookie is for reading
    # A QA trainer's cookie writes what the QA pages change (notes below; plans, samples,
    # evaluations, clips: tests/integration/test_qa_pages.py), never the scorecard forms.
    _name, trainer = new_token(world, Role.QA_TRAINER)
    sign_in(client, trainer)
    form = {"name": "cookie", "sections": [{"id": "s", "title": "S", "questions": []}]}
    assert client.post("/api/v1/qa/forms", json=form, headers=SAME_SITE).status_code == 401


def test_the_cookie_works_the_note_routes_from_this_site_only(
    world: World, client: TestClient
) -> None:
    _name, trainer = new_token(world, Role.QA_TRAINER)
    sign_in(client, trainer)
    notes = f"/api/v1/recordings/{world.recording}/notes"
    added = client.post(notes, json={"offset_ms": 100, "text": "by cookie"}, headers=SAME_SITE)
    assert added.status_code == 201, added.text
    note = f"/api/v1/qa/notes/{added.json()['id']}"
    for headers in ({"Origin": "https://evil.example"}, {}):
        forged = client.post(notes, json={"offset_ms": 0, "text": "forged"}, headers=headers)
        assert forged.status_code == 403, headers
        assert client.request("DELETE", note, headers=headers).status_code == 403
    edited = client.patch(note, json={"text": "edited"}, headers=SAME_SITE)
    assert edited.status_code == 200, edited.text
    assert [n["text"] for n in client.get(notes).json()["items"]] == ["edited"]
    assert client.request("DELETE", note, headers=SAME_SITE).status_code == 204
    assert client.get(notes).json()["items"] == []


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "same-origin"},
        {"Origin": "null"},
        {"Origin": "http://testserver.evil.example"},
        {"Origin": "http://testserver:8080"},
        {"Origin": "https://testserver"},  # not https here (no TLS proxy said so)
        {"Referer": "https://evil.example/page"},
        {},  # neither Origin nor Referer, whatever Sec-Fetch-Site omits
        {"Sec-Fetch-Site": "same-origin"},
    ],
    ids=lambda headers: ",".join(f"{k}={v}" for k, v in headers.items()) or "none",
)
def test_foreign_or_missing_origins_are_refused(
    world: World, client: TestClient, headers: dict[str, str]
) -> None:
    _name, token = new_token(world)
    before = len(audited(world, "access.refused"))
    response = client.post("/session", data={"token": token}, headers=headers)
    assert response.status_code == 403, response.text
    assert COOKIE_NAME not in client.cookies
    cookie = sign_in(client, token)
    sessions = len(sessions_of(world))
    assert client.post("/session/end", headers=headers).status_code == 403
    assert len(sessions_of(world)) == sessions  # the forged sign-out ended nothing
    assert client.post("/api/v1/recordings/search", json={}, headers=headers).status_code == 403
    refusals = audited(world, "access.refused")[before:]
    assert [r.details["route"] for r in refusals] == [
        "/session",
        "/session/end",
        "/api/v1/recordings/search",
    ]
    assert {r.details["reason"] for r in refusals} <= {
        "foreign_origin",
        "foreign_referer",
        "missing_origin",
    }
    assert token not in str([r.details for r in refusals])
    assert cookie not in str(refusals)


def test_a_same_site_referer_stands_in_for_a_missing_origin(
    world: World, client: TestClient
) -> None:
    _name, token = new_token(world)
    sign_in(client, token, headers={"Referer": f"{BASE}/"})
    assert client.get("/api/v1/me").status_code == 200


def test_bearer_requests_are_not_subject_to_the_cookie_checks(
    world: World, client: TestClient
) -> None:
    _name, token = new_token(world)
    sign_in(client, token)
    headers = {**bearer(token), "Origin": "https://evil.example"}
    response = client.post("/api/v1/recordings/search", json={}, headers=headers)
    assert response.status_code == 200, response.text


def test_idle_and_absolute_limits_end_a_session(world: World) -> None:
    _name, token = new_token(world)
    principal = authenticate(world.runtime, token)
    start = utcnow()
    opened = open_session(world.runtime, principal, now=start)
    idle = dt.timedelta(minutes=world.runtime.settings.api.session_idle_minutes)
    # Used every 20 minutes, it lives until its absolute end (12 h).
    moment = start
    while moment + dt.timedelta(minutes=20) < opened.expires_at:
        moment += dt.timedelta(minutes=20)
        assert resume_session(world.runtime, opened.cookie, now=moment) == principal
    with pytest.raises(SessionEnded):
        resume_session(world.runtime, opened.cookie, now=opened.expires_at)
    assert opened.session_id not in {row.id for row in sessions_of(world)}

    other = open_session(world.runtime, principal, now=start)
    resume_session(world.runtime, other.cookie, now=start + idle - dt.timedelta(minutes=1))
    with pytest.raises(SessionEnded):
        resume_session(world.runtime, other.cookie, now=start + 2 * idle)
    assert other.session_id not in {row.id for row in sessions_of(world)}


@pytest.mark.parametrize("end", ["revoke", "disable"])
def test_a_session_ends_with_its_token_or_user(world: World, end: str) -> None:
    name, token = new_token(world)
    principal = authenticate(world.runtime, token)
    opened = open_session(world.runtime, principal)
    if end == "revoke":
        revoke_token(world.runtime, principal.token_id, actor=ADMIN)
    else:
        disable_user(world.runtime, name, actor=ADMIN)
    with pytest.raises(InvalidToken) as refused:
        resume_session(world.runtime, opened.cookie)
    assert refused.value.reason == {"revoke": "revoked", "disable": "user_disabled"}[end]
    assert opened.session_id not in {row.id for row in sessions_of(world)}


def test_sign_in_sweeps_ended_sessions(world: World, client: TestClient) -> None:
    _name, token = new_token(world)
    principal = authenticate(world.runtime, token)
    long_ago = utcnow() - dt.timedelta(days=2)
    stale = open_session(world.runtime, principal, now=long_ago)
    assert stale.session_id in {row.id for row in sessions_of(world)}
    sign_in(client, token)
    assert stale.session_id not in {row.id for row in sessions_of(world)}
    with world.runtime.sessions() as session:
        cutoff = utcnow() - dt.timedelta(minutes=world.runtime.settings.api.session_idle_minutes)
        left = session.scalar(
            select(func.count()).select_from(WebSession).where(WebSession.last_seen_at <= cutoff)
        )
    assert left == 0


def test_the_audit_chain_holds_after_sessions(world: World, client: TestClient) -> None:
    _name, token = new_token(world)  # a session of its own: the test may run alone
    sign_in(client, token)
    assert client.post("/session/end", headers=SAME_SITE).status_code == 303
    with transaction(world.runtime.sessions) as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent))
    assert verify_chain(world.runtime.sessions).intact


# --- /docs ----------------------------------------------------------------------------


def test_docs_are_served_from_installed_files_under_the_csp(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "://" not in page.text  # no absolute URL: nothing from a CDN
    assert "<script>" not in page.text
    for asset in ("/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"):
        response = client.get(asset)
        assert response.status_code == 200
        assert len(response.content) > 10_000
    assert client.get("/docs/assets/index.html").status_code == 404
    assert client.get("/static/docs.js").status_code == 200


def test_the_docs_script_names_no_other_site(client: TestClient) -> None:
    script = client.get("/static/docs.js").text
    assert "://" not in script
    assert '"/openapi.json"' in script
    assert "validatorUrl: null" in script  # Swagger UI would ask validator.swagger.io
