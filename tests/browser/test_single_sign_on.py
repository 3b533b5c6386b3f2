"""Single sign-on end to end, in headless Chromium, against a real OpenID provider.

The archive runs under uvicorn on a free 127.0.0.1 port (as in
``test_player.py``), configured for Node's oidc-provider (:mod:`tests.oidc_provider`),
which the test run starts. Chromium clicks "Sign in with ...", is sent to
the provider, signs in on the provider's own login form, comes back signed
in, searches, and signs out.

The browser reaches the archive as ``recarchive.test`` (Chromium's resolver
maps the name to 127.0.0.1) and the provider as ``127.0.0.1``: two sites, as
in real life, so the provider's redirect back is a cross-site navigation and
the cookies' SameSite rules apply as they would (the sign-on's Lax cookie
must come back with it; the session's Strict cookie is withheld from every
request of that navigation).
"""

from __future__ import annotations

import dataclasses
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import select, update

from recarchive.access.models import AuditEvent, User
from recarchive.api.app import create_app
from recarchive.api.auth import COOKIE_NAME
from recarchive.catalogue.database import create_catalogue_engine, transaction, utcnow
from recarchive.catalogue.migrate import upgrade_schema
from recarchive.config import load_settings
from recarchive.runtime import Runtime
from tests.api_fixtures import add_recording
from tests.browser.test_player import LAUNCH_ARGS, chromium
from tests.oidc_provider import OidcProvider, oidc_config

__all__ = ["chromium"]  # the fixture, shared with the player's tests

PEPPER = "browser-sso-token-pepper-0123456789abcdef"
#: The archive's host name in the browser, another site than the provider's 127.0.0.1.
HOST = "recarchive.test"
BROWSER_ARGS = [*LAUNCH_ARGS, f"--host-resolver-rules=MAP {HOST} 127.0.0.1"]


@dataclasses.dataclass(frozen=True)
class Archive:
    runtime: Runtime
    base_url: str
    provider: OidcProvider


def _serve_on(sock: socket.socket, runtime: Runtime) -> tuple[uvicorn.Server, threading.Thread]:
    """The API on ``sock`` (bound before, so that its redirect URL could be registered)."""
    config = uvicorn.Config(create_app(runtime), log_config=None, access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    return server, thread


@pytest.fixture(scope="module")
def archive(
    tmp_path_factory: pytest.TempPathFactory, oidc_provider: OidcProvider
) -> Iterator[Archive]:
    base = tmp_path_factory.mktemp("sso-browser")
    url = f"sqlite:///{base / 'recarchive.db'}"
    engine = create_catalogue_engine(url)
    upgrade_schema(engine)
    engine.dispose()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base_url = f"http://{HOST}:{sock.getsockname()[1]}"
    client = oidc_provider.register(f"{base_url}/oidc/callback")
    config = base / "recarchive.toml"
    config.write_text(oidc_config(oidc_provider.issuer, client.client_id), encoding="utf-8")
    env = {
        "RECARCHIVE_CONFIG": str(config),
        "RECARCHIVE_GENERAL_DATA_DIR": str(base / "var"),
        "RECARCHIVE_CATALOGUE_URL": url,
        "RECARCHIVE_TOKEN_PEPPER": PEPPER,
        "RECARCHIVE_OIDC_CLIENT_SECRET": client.client_secret,
    }
    runtime = Runtime(load_settings(env=env))
    runtime.store.create()
    add_recording(runtime, customer_id="C-1", reasons=["billing"], agent="agent-sso")
    server, thread = _serve_on(sock, runtime)
    yield Archive(runtime, base_url, oidc_provider)
    server.should_exit = True
    thread.join(timeout=10)
    runtime.close()


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=BROWSER_ARGS
        )
        expect.set_options(timeout=15_000)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def sign_on(page: Page, archive: Archive, login: str) -> None:
    """From the sign-in page, through the provider's login form, back to recarchive."""
    page.goto(f"{archive.base_url}/")
    page.get_by_role("button", name="Sign in with Test IdP").click()
    page.wait_for_url(re.compile(re.escape(archive.provider.issuer) + r"/interaction/.*"))
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("any password")
    page.get_by_role("button", name="Sign-in").click()


def test_sign_on_search_and_sign_out(page: Page, archive: Archive) -> None:
    login = f"dispute-{uuid.uuid4().hex[:8]}"
    sign_on(page, archive, login)
    page.wait_for_url(f"{archive.base_url}/player")
    expect(page.locator("#whoami")).to_have_text(f"Signed in as {login} (dispute_handler)")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#results tbody tr").filter(has_text="agent-sso")).to_have_count(1)

    cookies = {c["name"]: c for c in page.context.cookies() if c["name"] == COOKIE_NAME}
    assert cookies[COOKIE_NAME]["httpOnly"]
    assert cookies[COOKIE_NAME]["sameSite"] == "Strict"

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in with Test IdP")).to_be_visible()
    # The old cookie, put back, opens nothing: the session ended at the server.
    page.context.add_cookies([{**cookies[COOKIE_NAME]}])
    page.goto(f"{archive.base_url}/player")
    expect(page.get_by_role("button", name="Sign in with Test IdP")).to_be_visible()
    with archive.runtime.sessions() as session:
        ends = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "session.end", AuditEvent.actor == login)
        )
        assert len(list(ends)) == 1


def test_an_unknown_role_is_refused_with_a_clear_page(page: Page, archive: Archive) -> None:
    login = f"unknown-{uuid.uuid4().hex[:8]}"
    sign_on(page, archive, login)
    page.wait_for_url(re.compile(re.escape(archive.base_url) + r"/oidc/callback\?.*"))
    expect(page.locator("#signin-error")).to_contain_text("Single sign-on refused")
    expect(page.locator("#signin-error")).to_contain_text("not one recarchive knows")
    with archive.runtime.sessions() as session:
        assert session.scalar(select(User).where(User.name == login)) is None
    page.goto(f"{archive.base_url}/player")
    expect(page.get_by_role("button", name="Sign in with Test IdP")).to_be_visible()


def test_a_disabled_user_is_refused(page: Page, archive: Archive) -> None:
    login = f"qa-{uuid.uuid4().hex[:8]}"
    sign_on(page, archive, login)
    page.wait_for_url(f"{archive.base_url}/player")
    with transaction(archive.runtime.sessions) as session:
        session.execute(update(User).where(User.name == login).values(disabled_at=utcnow()))
    page.context.clear_cookies()
    sign_on(page, archive, login)
    expect(page.locator("#signin-error")).to_contain_text("your recarchive account is disabled")
