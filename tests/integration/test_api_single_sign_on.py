"""Single sign-on against a real OpenID provider (Node's oidc-provider), with httpx.

The archive's side runs in-process (``TestClient``, site ``http://testserver``);
the provider is the real one (:mod:`tests.oidc_provider`), reached by a
second httpx client standing for the browser at the provider. The answer the
provider sends the browser back with is handed to the archive as the
browser would. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from sqlalchemy import func, select, update

from recarchive.access import sign_ins
from recarchive.access.audit import verify_chain
from recarchive.access.models import AuditEvent, FederatedIdentity, PendingSignIn, User, WebSession
from recarchive.api.app import create_app
from recarchive.api.auth import COOKIE_NAME
from recarchive.api.single_sign_on import BROWSER_COOKIE
from recarchive.catalogue.database import transaction, utcnow
from recarchive.errors import SecretMissing
from recarchive.runtime import Runtime
from tests.api_fixtures import TestClient, add_recording, build_runtime, close_runtime
from tests.oidc_provider import OidcProvider, oidc_config

BASE = "http://testserver"
SAME_SITE = {"Origin": BASE}


@dataclasses.dataclass
class World:
    runtime: Runtime
    provider: OidcProvider
    recording: str


@pytest.fixture(scope="module")
def world(
    catalogue_url: str, tmp_path_factory: pytest.TempPathFactory, oidc_provider: OidcProvider
) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("sso")
    client = oidc_provider.register(f"{BASE}/oidc/callback")
    config = tmp / "recarchive.toml"
    config.write_text(oidc_config(oidc_provider.issuer, client.client_id), encoding="utf-8")
    env = {"RECARCHIVE_CONFIG": str(config), "RECARCHIVE_OIDC_CLIENT_SECRET": client.client_secret}
    runtime = build_runtime(catalogue_url, tmp / "data", extra_env=env)
    recording = add_recording(runtime, customer_id="C-9", reasons=["billing"])
    yield World(runtime, oidc_provider, str(recording.id))
    close_runtime(runtime)


@pytest.fixture
def app(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.runtime), follow_redirects=False) as client:
        yield client


@pytest.fixture
def browser() -> Iterator[httpx.Client]:
    """The browser's side at the provider: its own cookies (the provider's session)."""
    with httpx.Client(follow_redirects=False, timeout=10) as client:
        yield client


_logins = iter(range(100_000))


def login_name(prefix: str) -> str:
    """A login the provider has never seen: its first part selects the role claim."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}-{next(_logins)}"


def start(app: TestClient) -> str:
    response = app.post("/session/oidc", headers=SAME_SITE)
    assert response.status_code == 303, response.text
    assert app.cookies.get(BROWSER_COOKIE)
    return str(response.headers["location"])


def answer(world: World, app: TestClient, browser: httpx.Client, login: str) -> str:
    """Start a sign-on and sign in at the provider; the callback URL (not yet followed)."""
    callback = world.provider.log_in(browser, start(app), login)
    assert callback.startswith(f"{BASE}/oidc/callback?"), callback
    return callback


def finish(app: TestClient, callback: str) -> httpx.Response:
    return app.get(callback.removeprefix(BASE))


def sign_on(world: World, app: TestClient, browser: httpx.Client, login: str) -> httpx.Response:
    return finish(app, answer(world, app, browser, login))


def events(world: World, action: str) -> list[AuditEvent]:
    with world.runtime.sessions() as session:
        query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
        return list(session.scalars(query))


def user(world: World, name: str) -> User | None:
    with world.runtime.sessions() as session:
        return session.scalar(select(User).where(User.name == name))


def count(world: World, model: Any) -> int:
    with world.runtime.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def with_query(callback: str, **changes: str) -> str:
    parts = urlsplit(callback)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    query.update(changes)
    return parts._replace(query=urlencode(query)).geturl()


def test_first_sign_on_provisions_the_user_and_opens_a_session(
    world: World, app: TestClient, browser: httpx.Client
) -> None:
    login = login_name("qa")
    authorization = urlsplit(start(app))
    params = parse_qs(authorization.query)
    assert authorization.geturl().startswith(f"{world.provider.issuer}/auth?")
    assert params["code_challenge_method"] == ["S256"]
    assert params["code_challenge"]
    assert params["nonce"]
    assert params["state"]
    assert params["response_type"] == ["code"]
    assert params["redirect_uri"] == [f"{BASE}/oidc/callback"]

    response = sign_on(world, app, browser, login)
    assert response.status_code == 200, response.text
    assert f"Signed in as {login}" in response.text
    assert 'http-equiv="refresh"' in response.text  # moves on to the player by itself
    cookie = app.cookies.get(COOKIE_NAME)
    assert cookie
    assert login not in cookie

    created = user(world, login)
    assert created is not None
    assert created.role.value == "qa_trainer"
    with world.runtime.sessions() as session:
        link = session.scalar(
            select(FederatedIdentity).where(FederatedIdentity.user_id == created.id)
        )
        row = session.scalar(select(WebSession).where(WebSession.user_id == created.id))
    assert link is not None
    assert (link.issuer, link.subject) == (world.provider.issuer, login)
    assert row is not None
    assert row.token_id is None

    player = app.get("/player")
    assert player.status_code == 200
    assert login in player.text
    search = app.get("/api/v1/recordings", params={"reason": "billing"})
    assert search.status_code == 200, search.text
    assert world.recording in search.text

    provisioned = [e for e in events(world, "users.provision") if e.details["user"] == login]
    assert provisioned[0].actor == f"oidc:{world.provider.issuer}"
    assert provisioned[0].details["role"] == "qa_trainer"
    started = [e for e in events(world, "session.start") if e.actor == login]
    assert started[0].details["method"] == "oidc"
    verify_chain(world.runtime.sessions)


def test_the_sign_in_page_offers_the_provider(app: TestClient) -> None:
    page = app.get("/")
    assert "Sign in with Test IdP" in page.text
    assert 'action="/session/oidc"' in page.text


def test_a_second_sign_on_finds_the_same_user_by_subject(
    world: World, app: TestClient, browser: httpx.Client
) -> None:
    login = login_name("dispute")
    assert sign_on(world, app, browser, login).status_code == 200
    # The provider now calls the same person by another name: still the same user.
    world.provider.set_claims(login, preferred_username=f"renamed-{login}")
    app.cookies.clear()
    assert sign_on(world, app, browser, login).status_code == 200
    assert user(world, f"renamed-{login}") is None
    with world.runtime.sessions() as session:
        links = session.scalar(select(func.count()).where(FederatedIdentity.subject == login))
    assert links == 1


def test_sign_out_ends_the_session(world: World, app: TestClient, browser: httpx.Client) -> None:
    assert sign_on(world, app, browser, login_name("qa")).status_code == 200
    cookie = str(app.cookies.get(COOKIE_NAME))
    assert app.get("/player").status_code == 200
    out = app.post("/session/end", headers=SAME_SITE)
    assert out.status_code == 303
    app.cookies.set(COOKIE_NAME, cookie)  # a copy of the cookie, replayed
    assert app.get("/player").status_code == 303
    assert app.get("/api/v1/recordings").status_code == 401


@pytest.mark.parametrize(
    ("prefix", "reason", "claimed"),
    [
        ("unknown", "oidc_unknown_role", "janitor"),
        ("nobody", "oidc_missing_role_claim", None),
    ],
)
def test_a_person_without_a_known_role_is_refused_and_nothing_is_created(
    world: World,
    app: TestClient,
    browser: httpx.Client,
    prefix: str,
    reason: str,
    claimed: str | None,
) -> None:
    login = login_name(prefix)
    users_before, links_before = count(world, User), count(world, FederatedIdentity)
    response = sign_on(world, app, browser, login)
    assert response.status_code == 403
    assert "Single sign-on refused" in response.text
    assert "ask the person responsible for the register" in response.text
    assert app.cookies.get(COOKIE_NAME) is None
    assert (count(world, User), count(world, FederatedIdentity)) == (users_before, links_before)
    refused = [e for e in events(world, "access.refused") if e.details["reason"] == reason]
    entry = refused[-1]
    assert entry.details["claimed_user"] == login
    assert entry.details["issuer"] == world.provider.issuer
    assert entry.details.get("role_claim") == claimed
    assert entry.details["route"] == "/oidc/callback"


def test_several_values_of_the_role_claim_map_to_one_role_or_are_refused(
    world: World, app: TestClient, browser: httpx.Client
) -> None:
    login = login_name("multi")  # ["staff", "recarchive-qa"]: "staff" is not mapped
    assert sign_on(world, app, browser, login).status_code == 200
    provisioned = user(world, login)
    assert provisioned is not None
    assert provisioned.role.value == "qa_trainer"

    other = login_name("multi")
    world.provider.set_claims(other, recarchive_role=["recarchive-qa", "recarchive-admin"])
    app.cookies.clear()
    response = sign_on(world, app, browser, other)
    assert response.status_code == 403
    assert "exactly one" in response.text
    assert user(world, other) is None


def test_a_role_change_at_the_provider_applies_at_the_next_sign_on(
    world: World, app: TestClient, browser: httpx.Client
) -> None:
    login = login_name("qa")
    assert sign_on(world, app, browser, login).status_code == 200
    qa_cookie = str(app.cookies.get(COOKIE_NAME))
    world.provider.set_claims(login, recarchive_role="recarchive-dispute")
    app.cookies.clear()
    assert sign_on(world, app, browser, login).status_code == 200
    changed = user(world, login)
    assert changed is not None
    assert changed.role.value == "dispute_handler"
    entry = [e for e in events(world, "users.role_change") if e.details["user"] == login][-1]
    assert (entry.details["from"], entry.details["to"]) == ("qa_trainer", "dispute_handler")
    # The earlier session speaks for the user as they are now.
    app.cookies.set(COOKIE_NAME, qa_cookie)
    assert "dispute_handler" in app.get("/player").text

    # A role claim that stops mapping refuses the sign-on and leaves the user as it was.
    world.provider.set_claims(login, recarchive_role="janitor")
    app.cookies.clear()
    assert sign_on(world, app, browser, login).status_code == 403
    kept = user(world, login)
    assert kept is not None
    assert kept.role.value == "dispute_handler"


def test_a_disabled_user_is_refused_though_the_provider_accepts_them(
    world: World, app: TestClient, browser: httpx.Client
) -> None:
    login = login_name("privacy")
    assert sign_on(world, app, browser, login).status_code == 200
    cookie = str(app.cookies.get(COOKIE_NAME))
    with transaction(world.runtime.sessions) as session:
        session.execute(update(User).where(User.name == login).values(disabled_at=utcnow()))
    # The session open at that moment ends with the next request ...
    assert app.get("/api/v1/recordings").status_code == 401
    assert app.get("/player").status_code == 303
    # ... and the provider's word does not open another one.
    app.cookies.clear()
    response = sign_on(world, app, browser, login)
    assert response.status_code == 403
    assert "disabled" in response.text
    assert app.cookies.get(COOKIE_NAME) is None
    entry = [e for e in events(world, "access.refused") if e.actor == login][-1]
    assert entry.details["reason"] == "oidc_user_disabled"
    del cookie


def test_a_local_user_of_the_same_name_is_never_taken_over(
    world: World, app: TestClient, browser: httpx.Client
) -> None:
    login = login_name("admin")
    with transaction(world.runtime.sessions) as session:
        session.add(User(name=login, role="qa_trainer"))
    response = sign_on(world, app, browser, login)
    assert response.status_code == 403
    assert "not linked" in response.text
    with world.runtime.sessions() as session:
        assert (
            session.scalar(select(FederatedIdentity).where(FederatedIdentity.subject == login))
            is None
        )
    kept = user(world, login)
    assert kept is not None
    assert kept.role.value == "qa_trainer"


# --- the answer must be the one this browser asked for --------------------------------


def refused_with(world: World, response: httpx.Response, reason: str) -> None:
    assert response.status_code == 400, response.text
    assert "Single sign-on failed" in response.text
    entry = events(world, "auth.refused")[-1]
    assert entry.details["reason"] == reason
    assert entry.details["route"] == "/oidc/callback"


def test_a_tampered_state_is_refused(world: World, app: TestClient, browser: httpx.Client) -> None:
    callback = answer(world, app, browser, login_name("qa"))
    state = parse_qs(urlsplit(callback).query)["state"][0]
    tampered = with_query(callback, state=state[:-2] + ("AA" if state[-2:] != "AA" else "BB"))
    refused_with(world, finish(app, tampered), "oidc_unknown_state")
    refused_with(world, finish(app, with_query(callback, state="")), "oidc_unknown_state")


def test_a_replayed_answer_is_refused(world: World, app: TestClient, browser: httpx.Client) -> None:
    callback = answer(world, app, browser, login_name("qa"))
    assert finish(app, callback).status_code == 200
    app.cookies.clear()
    refused_with(world, finish(app, callback), "oidc_unknown_state")
    assert app.cookies.get(COOKIE_NAME) is None


def test_a_code_replayed_under_a_fresh_state_is_refused_by_the_provider(
    world: World, app: TestClient, browser: httpx.Client
) -> None:
    used = answer(world, app, browser, login_name("qa"))
    assert finish(app, used).status_code == 200
    app.cookies.clear()
    fresh = answer(world, app, browser, login_name("qa"))
    replay = with_query(fresh, code=parse_qs(urlsplit(used).query)["code"][0])
    refused_with(world, finish(app, replay), "oidc_token_refused")


def test_an_answer_carried_to_another_browser_is_refused(
    world: World, app: TestClient, browser: httpx.Client
) -> None:
    callback = answer(world, app, browser, login_name("qa"))
    app.cookies.delete(BROWSER_COOKIE)  # login CSRF: the victim's browser never started it
    refused_with(world, finish(app, callback), "oidc_other_browser")
    assert app.cookies.get(COOKIE_NAME) is None


def test_a_wrong_nonce_is_refused(world: World, app: TestClient, browser: httpx.Client) -> None:
    callback = answer(world, app, browser, login_name("qa"))
    with transaction(world.runtime.sessions) as session:  # the nonce the ID token must carry
        session.execute(update(PendingSignIn).values(nonce="not-the-nonce-that-was-sent"))
    refused_with(world, finish(app, callback), "oidc_wrong_nonce")


def test_a_late_answer_is_refused(world: World, app: TestClient, browser: httpx.Client) -> None:
    callback = answer(world, app, browser, login_name("qa"))
    past = utcnow() - dt.timedelta(seconds=1)
    with transaction(world.runtime.sessions) as session:
        session.execute(update(PendingSignIn).values(expires_at=past))
    refused_with(world, finish(app, callback), "oidc_expired_state")


def test_an_answer_naming_another_issuer_is_refused(
    world: World, app: TestClient, browser: httpx.Client
) -> None:
    callback = answer(world, app, browser, login_name("qa"))
    refused_with(
        world, finish(app, with_query(callback, iss="https://evil.example")), "oidc_wrong_issuer"
    )


def test_the_providers_error_is_refused(world: World, app: TestClient) -> None:
    authorization = parse_qs(urlsplit(start(app)).query)
    query = {
        "error": "access_denied",
        "state": authorization["state"][0],
        "iss": world.provider.issuer,
    }
    refused_with(world, app.get(f"/oidc/callback?{urlencode(query)}"), "oidc_provider_error")


def test_sign_on_must_start_on_this_site(world: World, app: TestClient) -> None:
    before = count(world, PendingSignIn)
    response = app.post("/session/oidc", headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert count(world, PendingSignIn) == before


def test_single_sign_on_is_off_without_an_issuer(tmp_path: Path, catalogue_url: str) -> None:
    runtime = build_runtime(catalogue_url, tmp_path / "data")
    try:
        with TestClient(create_app(runtime), follow_redirects=False) as client:
            assert "Sign in with" not in client.get("/").text
            assert client.post("/session/oidc", headers=SAME_SITE).status_code == 404
            assert client.get("/oidc/callback?state=x&code=y").status_code == 404
    finally:
        close_runtime(runtime)


def test_a_flood_of_starts_cannot_fill_the_catalogue(
    world: World, app: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sign_ins, "MAX_PENDING", count(world, PendingSignIn) + 1)
    start(app)
    before = count(world, PendingSignIn)
    response = app.post("/session/oidc", headers=SAME_SITE)
    assert response.status_code == 503
    assert "too many sign-ins are in progress" in response.text
    assert count(world, PendingSignIn) == before


def test_an_unreachable_provider_is_told_and_nothing_is_stored(
    tmp_path: Path, catalogue_url: str
) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        issuer = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = tmp_path / "recarchive.toml"
    config.write_text(oidc_config(issuer, "recarchive"), encoding="utf-8")
    env = {"RECARCHIVE_CONFIG": str(config), "RECARCHIVE_OIDC_CLIENT_SECRET": "s" * 40}
    runtime = build_runtime(catalogue_url, tmp_path / "data", extra_env=env)
    try:
        with TestClient(create_app(runtime), follow_redirects=False) as client:
            with runtime.sessions() as session:
                before = session.scalar(select(func.count()).select_from(PendingSignIn))
            response = client.post("/session/oidc", headers=SAME_SITE)
            assert response.status_code == 503
            assert "Single sign-on is unavailable" in response.text
            assert client.cookies.get(BROWSER_COOKIE) is None
            with runtime.sessions() as session:
                after = session.scalar(select(func.count()).select_from(PendingSignIn))
            assert after == before
    finally:
        close_runtime(runtime)


def test_a_missing_client_secret_stops_the_server_at_start(
    tmp_path: Path, catalogue_url: str
) -> None:
    config = tmp_path / "recarchive.toml"
    config.write_text(oidc_config("https://idp.example.fi", "recarchive"), encoding="utf-8")
    runtime = build_runtime(
        catalogue_url, tmp_path / "data", extra_env={"RECARCHIVE_CONFIG": str(config)}
    )
    try:
        with pytest.raises(SecretMissing, match="RECARCHIVE_OIDC_CLIENT_SECRET"):
            create_app(runtime)
    finally:
        close_runtime(runtime)
