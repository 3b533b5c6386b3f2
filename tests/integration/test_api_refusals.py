"""Who asked, on record: client addresses only from trusted proxies, refusals audited and bounded.

On SQLite and PostgreSQL. The client address tests run the application
under uvicorn as ``recarchive serve`` configures it (a real socket on
127.0.0.1), since uvicorn's own header handling is part of what is tested.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select

from recarchive.access.audit import entry_content, verify_chain
from recarchive.access.models import AuditEvent, Role
from recarchive.access.users import add_user, revoke_token
from recarchive.api.app import create_app
from recarchive.cli.serve_cmd import uvicorn_options
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

RECORDINGS = "/api/v1/recordings"
SPOOFED = "203.0.113.66"
PROXY_ENV = "RECARCHIVE_API_TRUSTED_PROXIES"


@dataclasses.dataclass
class World:
    runtime: Runtime
    tokens: dict[Role, str]
    catalogue_url: str
    tmp: Path


@pytest.fixture(scope="module")
def world(catalogue_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("refusals")
    runtime = build_runtime(catalogue_url, tmp / "main")
    role_tokens = tokens(runtime, prefix="ref-")
    add_recording(runtime, customer_id="C-1", reasons=["billing"])
    yield World(runtime, role_tokens, catalogue_url, tmp)
    close_runtime(runtime)


def last_seq(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return int(session.scalar(select(func.max(AuditEvent.seq))) or 0)


def audit_since(runtime: Runtime, seq: int, *actions: str) -> list[AuditEvent]:
    with runtime.sessions() as session:
        statement = select(AuditEvent).where(AuditEvent.seq > seq).order_by(AuditEvent.seq)
        if actions:
            statement = statement.where(AuditEvent.action.in_(actions))
        return list(session.scalars(statement))


def as_text(events: list[AuditEvent]) -> str:
    return json.dumps([entry_content(event) for event in events], default=str)


@pytest.fixture
def serve() -> Iterator[Any]:
    """Start ``create_app(runtime)`` under uvicorn as ``serve`` runs it; yields its base URL."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(runtime: Runtime) -> str:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        options = uvicorn_options("127.0.0.1", port)
        config = uvicorn.Config(create_app(runtime), lifespan="off", **options)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            assert thread.is_alive(), "uvicorn did not start"
            assert time.monotonic() < deadline, "uvicorn did not start in time"
            time.sleep(0.02)
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)


# --- item 5: the client address ---------------------------------------------------------


def test_forwarded_for_from_an_untrusted_peer_is_not_recorded(world: World, serve: Any) -> None:
    """uvicorn would believe loopback by default; ``serve`` and the app believe no one."""
    base = serve(world.runtime)
    before = last_seq(world.runtime)
    headers = {**bearer(world.tokens[Role.DISPUTE_HANDLER]), "X-Forwarded-For": SPOOFED}
    response = httpx.get(f"{base}{RECORDINGS}", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    refused = httpx.get(f"{base}{RECORDINGS}", headers={"X-Forwarded-For": SPOOFED}, timeout=30)
    assert refused.status_code == 401
    events = audit_since(world.runtime, before)
    assert [e.action for e in events] == ["search", "auth.refused"]
    assert {e.client_addr for e in events} == {"127.0.0.1"}
    assert SPOOFED not in as_text(events)


def test_forwarded_for_from_a_trusted_proxy_is_recorded(world: World, serve: Any) -> None:
    runtime = build_runtime(
        world.catalogue_url, world.tmp / "proxied", extra_env={PROXY_ENV: "127.0.0.1, 10.0.0.0/8"}
    )
    try:
        base = serve(runtime)
        before = last_seq(runtime)
        token = bearer(world.tokens[Role.DISPUTE_HANDLER])
        # The client made up the left-most address; the proxies appended the rest.
        chain = f"{SPOOFED}, 198.51.100.7, 10.1.2.3"
        response = httpx.get(
            f"{base}{RECORDINGS}", headers={**token, "X-Forwarded-For": chain}, timeout=30
        )
        assert response.status_code == 200, response.text
        events = audit_since(runtime, before)
        assert [(e.action, e.client_addr) for e in events] == [("search", "198.51.100.7")]
    finally:
        close_runtime(runtime)


def test_the_client_address_rules_without_a_server(world: World) -> None:
    """The same rules under the test client, for the peers a server cannot fake."""
    runtime = build_runtime(
        world.catalogue_url, world.tmp / "peers", extra_env={PROXY_ENV: "192.0.2.10"}
    )
    try:
        app = create_app(runtime)
        token = bearer(world.tokens[Role.QA_TRAINER])
        cases = {  # peer, X-Forwarded-For -> recorded
            ("192.0.2.10", "198.51.100.1"): "198.51.100.1",
            ("192.0.2.10", "198.51.100.1, 192.0.2.10"): "198.51.100.1",
            ("192.0.2.10", "unknown"): "192.0.2.10",
            ("192.0.2.10", None): "192.0.2.10",
            ("192.0.2.11", "198.51.100.1"): "192.0.2.11",
        }
        for (peer, forwarded), expected in cases.items():
            before = last_seq(runtime)
            headers = {**token, **({"X-Forwarded-For": forwarded} if forwarded else {})}
            with TestClient(app, client=(peer, 40000)) as client:
                assert client.get(RECORDINGS, headers=headers).status_code == 200
            [event] = audit_since(runtime, before)
            assert event.client_addr == expected, (peer, forwarded)
    finally:
        close_runtime(runtime)


# --- refusals on record -----------------------------------------------------------------


def test_401s_are_audited_with_what_is_known_and_no_secret(world: World) -> None:
    revoked = add_user(world.runtime, "ref-revoked", Role.DISPUTE_HANDLER, actor=ADMIN)
    revoke_token(world.runtime, revoked.token_id, actor=ADMIN)
    forged_id = uuid.uuid4()
    forged = f"rca_{forged_id.hex}_{'A' * 43}"
    attempts = {  # header -> (reason, token id, user known)
        "": ("missing_token", None, False),
        "Bearer garbage-secret-value": ("malformed", None, False),
        "Basic dXNlcjpwYXNz": ("malformed_header", None, False),
        f"Bearer {forged}": ("unknown_token", str(forged_id), False),
        f"Bearer {revoked.token}": ("revoked", str(revoked.token_id), True),
    }
    app = create_app(world.runtime)
    with TestClient(app, client=("192.0.2.50", 40000)) as client:
        for header, (reason, token_id, known) in attempts.items():
            before = last_seq(world.runtime)
            headers = {"Authorization": header} if header else {}
            url = f"{RECORDINGS}/{uuid.uuid4()}?number=0401234567"
            assert client.get(url, headers=headers).status_code == 401
            [event] = audit_since(world.runtime, before)
            assert event.action == "auth.refused"
            assert event.client_addr == "192.0.2.50"
            assert event.details["reason"] == reason
            assert event.details["route"] == "/api/v1/recordings/{recording_id}"
            assert event.details["method"] == "GET"
            assert event.details.get("token_id") == token_id
            if known:
                assert event.actor == "ref-revoked"
                assert event.actor_role == "dispute_handler"
                assert event.details["user_id"]
            else:
                assert event.actor == "anonymous"
                assert "user_id" not in event.details
            text = as_text([event])
            assert "0401234567" not in text
            assert "garbage-secret-value" not in text
            assert "A" * 43 not in text
            # rca_<id hex>_<secret>: the secret (base64url) may itself hold "_".
            assert revoked.token.split("_", 2)[2] not in text


def test_403s_are_audited_with_the_caller(world: World) -> None:
    app = create_app(world.runtime)
    trainer = bearer(world.tokens[Role.QA_TRAINER])
    with TestClient(app, client=("192.0.2.51", 40000)) as client:
        before = last_seq(world.runtime)
        assert client.get("/api/v1/holds", headers=trainer).status_code == 403
        response = client.get(RECORDINGS, params={"customer_id": "C-SECRET-9"}, headers=trainer)
        assert response.status_code == 403
        me = client.get("/api/v1/me", headers=trainer).json()
    events = audit_since(world.runtime, before)
    assert [e.action for e in events] == ["access.refused", "access.refused"]
    holds, search = events
    assert holds.actor == me["user"]
    assert holds.actor_role == "qa_trainer"
    assert holds.client_addr == "192.0.2.51"
    assert holds.details["route"] == "/api/v1/holds"
    assert holds.details["reason"] == "role_not_allowed"
    assert holds.details["token_id"]
    assert holds.details["user_id"]
    assert search.details["route"] == "/api/v1/recordings"
    assert "C-SECRET-9" not in as_text(events)
    assert world.tokens[Role.QA_TRAINER] not in as_text(events)


def test_a_flood_of_refusals_is_bounded_and_counted(world: World) -> None:
    app = create_app(world.runtime)
    per_minute = world.runtime.settings.api.refusal_audit_per_minute
    now = [1000.0]
    app.state.refusals.limiter.clock = lambda: now[0]
    before = last_seq(world.runtime)
    with TestClient(app, client=("192.0.2.99", 40000)) as client:
        for _ in range(1000):
            response = client.get(RECORDINGS, headers={"Authorization": "Bearer nope"})
            assert response.status_code == 401
        # Another client and reason are not crowded out by the flood.
        with TestClient(app, client=("192.0.2.98", 40000)) as other:
            assert other.get(RECORDINGS).status_code == 401
        refused = audit_since(world.runtime, before, "auth.refused", "refusals.suppressed")
        assert len(refused) == per_minute + 1
        assert not audit_since(world.runtime, before, "refusals.suppressed")
        now[0] += 61  # the minute is over: the next refusal brings the count
        assert client.get(RECORDINGS, headers={"Authorization": "Bearer nope"}).status_code == 401
    [summary] = audit_since(world.runtime, before, "refusals.suppressed")
    assert summary.client_addr == "192.0.2.99"
    assert summary.details["suppressed"] == 1000 - per_minute
    assert summary.details["recorded"] == per_minute
    assert summary.details["reason"] == "malformed"
    assert summary.details["refused_action"] == "auth.refused"
    after = audit_since(world.runtime, summary.seq, "auth.refused")
    assert len(after) == 1  # the refusal that came after the window: recorded again
    assert verify_chain(world.runtime.sessions).intact
