"""Users and API tokens on both catalogues: issue, authenticate, revoke, disable, audit."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from recarchive.access.actors import Actor
from recarchive.access.audit import verify_chain
from recarchive.access.models import ApiToken, AuditEvent, Role, User
from recarchive.access.services import (
    TOKEN_HASHER,
    AccessError,
    InvalidToken,
    authenticate,
    revalidate,
)
from recarchive.access.users import (
    TokenNotFound,
    UserExists,
    UserNotFound,
    add_user,
    disable_user,
    issue_token,
    list_users,
    revoke_token,
)
from recarchive.catalogue.database import create_catalogue_engine, transaction, utcnow
from recarchive.catalogue.migrate import upgrade_schema
from recarchive.config import load_settings
from recarchive.runtime import Runtime
from tests.actors import ADMIN

PEPPER = "integration-test-token-pepper-0123456789abcdef"
REFUSED = "invalid or expired token"
ROOT_ADMIN = Actor("root-admin", Role.ADMIN, "10.0.0.9")


@pytest.fixture
def runtime(tmp_path: Path, empty_catalogue_url: str) -> Iterator[Runtime]:
    engine = create_catalogue_engine(empty_catalogue_url)
    upgrade_schema(engine)
    engine.dispose()
    env = {
        "RECARCHIVE_GENERAL_DATA_DIR": str(tmp_path / "var"),
        "RECARCHIVE_CATALOGUE_URL": empty_catalogue_url,
        "RECARCHIVE_TOKEN_PEPPER": PEPPER,
    }
    runtime = Runtime(load_settings(env=env))
    yield runtime
    runtime.close()


def stored_token(runtime: Runtime, token_id: uuid.UUID) -> ApiToken:
    with runtime.sessions() as session:
        return session.get_one(ApiToken, token_id)


def test_token_round_trip(runtime: Runtime) -> None:
    issued = add_user(runtime, "alice", "qa_trainer", actor=ADMIN, token_days=30)
    assert issued.token.startswith(f"rca_{issued.token_id.hex}_")
    assert issued.user_name == "alice"
    assert dt.timedelta(days=29) < issued.expires_at - utcnow() <= dt.timedelta(days=30)
    assert issued.token not in repr(issued)

    principal = authenticate(runtime, issued.token)
    assert (principal.user_name, principal.role, principal.token_id) == (
        "alice",
        Role.QA_TRAINER,
        issued.token_id,
    )
    first_use = stored_token(runtime, issued.token_id).last_used_at
    assert first_use is not None

    authenticate(runtime, issued.token, now=first_use + dt.timedelta(seconds=30))
    assert stored_token(runtime, issued.token_id).last_used_at == first_use
    later = first_use + dt.timedelta(minutes=2)
    authenticate(runtime, issued.token, now=later)
    assert stored_token(runtime, issued.token_id).last_used_at == later


def _wrong_secret(runtime: Runtime, token: str, token_id: uuid.UUID) -> str:
    return token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")


def _revoked(runtime: Runtime, token: str, token_id: uuid.UUID) -> str:
    revoke_token(runtime, token_id, actor=ADMIN)
    return token


def _disabled(runtime: Runtime, token: str, token_id: uuid.UUID) -> str:
    disable_user(runtime, "bob", actor=ADMIN)
    return token


def _unknown_id(runtime: Runtime, token: str, token_id: uuid.UUID) -> str:
    return token.replace(token_id.hex, uuid.uuid4().hex)


REFUSALS: dict[str, Callable[[Runtime, str, uuid.UUID], str]] = {
    "wrong_secret": _wrong_secret,
    "malformed": lambda _r, token, _i: token.replace("rca_", "rcx_"),
    "truncated": lambda _r, token, _i: token[:40],
    "unknown_token": _unknown_id,
    "revoked": _revoked,
    "user_disabled": _disabled,
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refusals_share_one_message_and_log_the_reason(
    runtime: Runtime, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    issued = add_user(runtime, "bob", Role.DISPUTE_HANDLER, actor=ADMIN)
    token = REFUSALS[case](runtime, issued.token, issued.token_id)
    with (
        caplog.at_level(logging.INFO, logger="recarchive.access.services"),
        pytest.raises(InvalidToken) as caught,
    ):
        authenticate(runtime, token)
    assert caught.value.message == REFUSED
    reasons = [getattr(r, "reason", None) for r in caplog.records if r.msg == "token_refused"]
    expected = "malformed" if case == "truncated" else case
    assert reasons == [expected]
    assert all(issued.token not in record.getMessage() for record in caplog.records)


def test_expired_token_is_refused_with_the_same_message(runtime: Runtime) -> None:
    issued = add_user(runtime, "carol", "auditor", actor=ADMIN, token_days=1)
    authenticate(runtime, issued.token)
    with pytest.raises(InvalidToken, match=f"^{REFUSED}$"):
        authenticate(runtime, issued.token, now=issued.expires_at + dt.timedelta(seconds=1))


def test_secrets_are_stored_nowhere(runtime: Runtime) -> None:
    issued = add_user(runtime, "dave", "privacy_officer", actor=ADMIN, description="laptop")
    second = issue_token(runtime, "dave", actor=ADMIN)
    revoke_token(runtime, issued.token_id, actor=ADMIN)
    authenticate(runtime, second.token)
    stored = stored_token(runtime, issued.token_id)
    assert stored.secret_hash.startswith("$argon2id$")
    assert stored.secret_hash != issued.token
    dumped = []
    with runtime.engine.connect() as connection:
        for table in (User.__table__, ApiToken.__table__, AuditEvent.__table__):
            dumped += [repr(tuple(row)) for row in connection.execute(select(table))]
    everything = "\n".join(dumped)
    hashes = {stored.secret_hash, stored_token(runtime, second.token_id).secret_hash}
    for token in (issued.token, second.token):
        assert token not in everything
        assert token.split("_", 2)[2] not in everything  # the secret alone
    assert PEPPER not in everything
    with runtime.sessions() as session:
        details = "\n".join(repr(e.details) for e in session.scalars(select(AuditEvent)))
    assert not any(h in details for h in hashes)


def test_changes_are_audited(runtime: Runtime) -> None:
    issued = add_user(runtime, "erin", "auditor", actor=ROOT_ADMIN)
    second = issue_token(runtime, "erin", actor=ROOT_ADMIN, days=7)
    revoke_token(runtime, issued.token_id, actor=ROOT_ADMIN)
    assert disable_user(runtime, "erin", actor=ROOT_ADMIN) == 1
    with runtime.sessions() as session:
        events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
    assert [(e.action, e.actor) for e in events] == [
        ("users.add", "root-admin"),
        ("tokens.issue", "root-admin"),
        ("tokens.issue", "root-admin"),
        ("tokens.revoke", "root-admin"),
        ("users.disable", "root-admin"),
    ]
    assert events[0].details == {"user": "erin", "role": "auditor"}
    assert {(e.actor_role, e.client_addr) for e in events} == {("admin", "10.0.0.9")}
    assert events[1].details["token_id"] == str(issued.token_id)
    assert events[2].details["token_id"] == str(second.token_id)
    assert events[3].details == {"user": "erin", "token_id": str(issued.token_id)}
    assert events[4].details == {"user": "erin", "revoked_token_ids": [str(second.token_id)]}
    assert verify_chain(runtime.sessions).intact


def test_refused_changes(runtime: Runtime) -> None:
    add_user(runtime, "frank", "qa_trainer", actor=ADMIN)
    with pytest.raises(UserExists, match="'frank' already exists"):
        add_user(runtime, "frank", "auditor", actor=ADMIN)
    with pytest.raises(AccessError, match=r"unknown role 'boss'.*qa_trainer.*admin"):
        add_user(runtime, "grace", "boss", actor=ADMIN)
    with pytest.raises(AccessError, match="user name 'Grace' is not valid"):
        add_user(runtime, "Grace", "auditor", actor=ADMIN)
    with pytest.raises(AccessError, match="token lifetime 0 days"):
        add_user(runtime, "grace", "auditor", actor=ADMIN, token_days=0)
    with pytest.raises(UserNotFound, match="no user 'nobody'"):
        issue_token(runtime, "nobody", actor=ADMIN)
    missing = uuid.uuid4()
    with pytest.raises(TokenNotFound, match=str(missing)):
        revoke_token(runtime, missing, actor=ADMIN)
    disable_user(runtime, "frank", actor=ADMIN)
    with pytest.raises(AccessError, match="'frank' is disabled; no token was issued"):
        issue_token(runtime, "frank", actor=ADMIN)
    with pytest.raises(AccessError, match="already disabled"):
        disable_user(runtime, "frank", actor=ADMIN)
    listed = list_users(runtime, actor=ADMIN)
    assert [u.name for u in listed] == ["frank"]  # nothing refused was stored
    with runtime.sessions() as session:
        actions = list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)))
    assert actions == ["users.add", "tokens.issue", "users.disable", "users.list"]


def test_list_users_counts_active_tokens(runtime: Runtime) -> None:
    first = add_user(runtime, "heidi", "qa_trainer", actor=ADMIN)
    issue_token(runtime, "heidi", actor=ADMIN, days=1)
    revoke_token(runtime, first.token_id, actor=ADMIN)
    add_user(runtime, "ivan", "auditor", actor=ADMIN)
    summaries = {u.name: u for u in list_users(runtime, actor=ADMIN)}
    assert summaries["heidi"].active_tokens == 1
    assert summaries["heidi"].last_used_at is None
    in_two_days = list_users(runtime, actor=ADMIN, now=utcnow() + dt.timedelta(days=2))
    assert {u.name: u.active_tokens for u in in_two_days} == {"heidi": 0, "ivan": 1}


def test_outdated_hash_parameters_are_upgraded(runtime: Runtime) -> None:
    issued = add_user(runtime, "judy", "qa_trainer", actor=ADMIN)
    secret = issued.token.split("_", 2)[2]
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PEPPER + secret)
    assert TOKEN_HASHER.check_needs_rehash(weak)
    with transaction(runtime.sessions) as session:
        session.get_one(ApiToken, issued.token_id).secret_hash = weak
    authenticate(runtime, issued.token)
    upgraded = stored_token(runtime, issued.token_id).secret_hash
    assert upgraded != weak
    assert not TOKEN_HASHER.check_needs_rehash(upgraded)
    assert authenticate(runtime, issued.token).user_name == "judy"


@pytest.mark.parametrize("case", ["revoked", "user_disabled"])
def test_revalidation_refuses_a_token_revoked_or_disabled_since_it_was_checked(
    runtime: Runtime, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    """What the API's token cache relies on once a token's cache time is up."""
    issued = add_user(runtime, "bob", Role.DISPUTE_HANDLER, actor=ADMIN)
    principal = authenticate(runtime, issued.token)
    assert revalidate(runtime, principal) == principal
    REFUSALS[case](runtime, issued.token, issued.token_id)
    with (
        caplog.at_level(logging.INFO, logger="recarchive.access.services"),
        pytest.raises(InvalidToken, match=f"^{REFUSED}$"),
    ):
        revalidate(runtime, principal)
    reasons = [getattr(r, "reason", None) for r in caplog.records if r.msg == "token_refused"]
    assert reasons == [case]


def test_revalidation_refuses_a_token_that_has_expired_since(runtime: Runtime) -> None:
    issued = add_user(runtime, "carol", "auditor", actor=ADMIN, token_days=1)
    principal = authenticate(runtime, issued.token)
    assert revalidate(runtime, principal, now=issued.expires_at - dt.timedelta(seconds=1))
    with pytest.raises(InvalidToken, match=f"^{REFUSED}$"):
        revalidate(runtime, principal, now=issued.expires_at + dt.timedelta(seconds=1))
