"""API tokens: minting them and deciding whom a token speaks for.

A token reads ``rca_<token id as 32 hex>_<secret>``. Only an Argon2id hash of
the token pepper (a secret setting) followed by the secret is stored; the
token is returned once, when issued, and never stored, logged or audited.
Managing users and their tokens (who may, and the audit of every change)
lives in :mod:`recarchive.access.users`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import re
import secrets
import uuid
from collections.abc import Mapping
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from recarchive import probes
from recarchive.access.audit import append_event
from recarchive.access.interfaces import AccessContext
from recarchive.access.models import ApiToken, Role, User
from recarchive.catalogue.database import transaction, utcnow
from recarchive.errors import ConflictError, SecretMissing

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "rca_"  # noqa: S105 - a public marker that makes tokens easy to spot, not a secret
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
_TOKEN_PATTERN = re.compile(r"^rca_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$")
MAX_TOKEN_DAYS = 3650
#: ``last_used_at`` is written at most this often per token, to keep writes down.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


class AccessError(ConflictError):
    """The user or token change was refused."""


class InvalidToken(AccessError):
    """invalid or expired token"""

    #: Why, for the log and the audit entry of the refusal (never shown to the caller):
    #: ``malformed``, ``unknown_token``, ``wrong_secret``, ``revoked``, ``expired``,
    #: ``user_disabled``; and the token and user, when known.
    reason: str = "invalid"
    token_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    user_name: str | None = None
    role: Role | None = None


@dataclasses.dataclass(frozen=True)
class IssuedToken:
    """A freshly issued token: ``token`` is its only copy, show it once."""

    token: str = dataclasses.field(repr=False)
    token_id: uuid.UUID
    user_name: str
    expires_at: dt.datetime


@dataclasses.dataclass(frozen=True)
class Principal:
    """Who a valid token, or a web session, speaks for.

    ``token_id`` is the token's; None for a single sign-on's web session,
    which no token stands behind.
    """

    user_id: uuid.UUID
    user_name: str
    role: Role
    token_id: uuid.UUID | None = None


#: Argon2id at OWASP's minimum (19 MiB, 2 passes): the secret is 32 random bytes, not a
#: password, so brute force is hopeless anyway; the library default (64 MiB, 3 passes)
#: costs ~0.4 s per check here, too slow to verify on every API request.
TOKEN_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the token id is unknown, so a miss costs as long as a hit."""
    return TOKEN_HASHER.hash(secrets.token_urlsafe(32))


def _pepper(runtime: AccessContext) -> str:
    pepper = runtime.settings.secret("token_pepper")
    if pepper is None:  # required=True never returns None; keeps the type checker honest
        raise SecretMissing("secret token_pepper is not set")
    return pepper


def check_name(name: str) -> None:
    if not NAME_PATTERN.match(name):
        raise AccessError(
            f"user name {name!r} is not valid: use 2 to 64 lowercase letters, digits, "
            "'.', '_' or '-', starting with a letter or digit"
        )


def parse_role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        known = ", ".join(member.value for member in Role)
        raise AccessError(f"unknown role {role!r} (roles: {known})") from None


def check_days(days: int) -> None:
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise AccessError(f"token lifetime {days} days: give 1 to {MAX_TOKEN_DAYS} days")


def mint_token(
    runtime: AccessContext,
    session: Session,
    user: User,
    days: int,
    note: str | None,
    *,
    actor: str,
    actor_role: str | None,
    client_addr: str | None,
    extra: Mapping[str, Any] | None = None,
) -> IssuedToken:
    """A new token for ``user``, audited as ``tokens.issue`` by ``actor`` (``extra`` added)."""
    check_days(days)
    token_id, secret = uuid.uuid4(), secrets.token_urlsafe(32)
    expires_at = utcnow() + dt.timedelta(days=days)
    digest = TOKEN_HASHER.hash(_pepper(runtime) + secret)
    token = ApiToken(id=token_id, user_id=user.id, secret_hash=digest, expires_at=expires_at)
    token.description = note
    session.add(token)
    session.flush()
    details = {"user": user.name, "token_id": str(token_id), "expires_at": expires_at.isoformat()}
    append_event(
        session,
        actor=actor,
        actor_role=actor_role,
        client_addr=client_addr,
        action="tokens.issue",
        details={**details, **(extra or {})},
    )
    logger.info("token_issued", extra={"token_id": str(token_id), "user_id": str(user.id)})
    return IssuedToken(f"{TOKEN_PREFIX}{token_id.hex}_{secret}", token_id, user.name, expires_at)


def _refuse(
    reason: str, token_id: uuid.UUID | None = None, user: User | None = None
) -> InvalidToken:
    extra = {"reason": reason, "token_id": str(token_id) if token_id else None}
    logger.info("token_refused", extra=extra)
    refused = InvalidToken()
    refused.reason, refused.token_id = reason, token_id
    if user is not None:
        refused.user_id, refused.user_name, refused.role = user.id, user.name, user.role
    return refused


@probes.timed("token check (Argon2, cache miss)")
def authenticate(
    runtime: AccessContext, token_text: str, *, now: dt.datetime | None = None
) -> Principal:
    """The principal a token speaks for, or :class:`InvalidToken`.

    Every refusal (malformed, unknown, wrong secret, revoked, expired,
    disabled user) raises the same "invalid or expired token" so a caller
    cannot tell them apart; the specific reason is logged with the token id.
    Records ``last_used_at`` (at most once a minute) and rehashes the secret
    when the hashing parameters have changed.
    """
    now = now or utcnow()
    match = _TOKEN_PATTERN.match(token_text.strip())
    if match is None:
        raise _refuse("malformed")
    token_id = uuid.UUID(hex=match.group(1))
    peppered = _pepper(runtime) + match.group(2)
    hasher = TOKEN_HASHER
    with transaction(runtime.sessions) as session:
        token = session.get(ApiToken, token_id)
        if token is None:
            _verify(hasher, _dummy_hash(), peppered)
            raise _refuse("unknown_token", token_id)
        if not _verify(hasher, token.secret_hash, peppered):
            raise _refuse("wrong_secret", token_id)
        if hasher.check_needs_rehash(token.secret_hash):
            token.secret_hash = hasher.hash(peppered)
            logger.info("token_rehashed", extra={"token_id": str(token_id)})
        return _in_force(token, now)


@probes.timed("token state re-read (cache stale)")
def revalidate(
    runtime: AccessContext, principal: Principal, *, now: dt.datetime | None = None
) -> Principal:
    """Whether a token that :func:`authenticate` accepted is still in force.

    For the API's token cache: the secret was checked when the token was
    first accepted, and a token's secret never changes, so what can have
    changed since is its state (revoked, expired, its user disabled), which
    one read of the token row tells without another Argon2 check. Raises
    :class:`InvalidToken` like :func:`authenticate` (also for a principal of
    no token, a single sign-on's).
    """
    if principal.token_id is None:
        raise _refuse("no_token")
    return token_in_force(runtime, principal.token_id, now=now)


def token_in_force(
    runtime: AccessContext, token_id: uuid.UUID, *, now: dt.datetime | None = None
) -> Principal:
    """The principal of the token ``token_id`` if it is in force (:class:`InvalidToken`).

    For a token whose secret was checked before (:func:`revalidate`, web sessions).
    """
    now = now or utcnow()
    with transaction(runtime.sessions) as session:
        token = session.get(ApiToken, token_id)
        if token is None:
            raise _refuse("unknown_token", token_id)
        return _in_force(token, now)


def _in_force(token: ApiToken, now: dt.datetime) -> Principal:
    """The token's principal unless it is revoked, expired or its user disabled."""
    user = token.user
    if user.disabled_at is not None:  # before revoked: disabling revokes every token
        raise _refuse("user_disabled", token.id, user)
    if token.revoked_at is not None:
        raise _refuse("revoked", token.id, user)
    if token.expires_at <= now:
        raise _refuse("expired", token.id, user)
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        token.last_used_at = now
    return Principal(user.id, user.name, user.role, token.id)


def _verify(hasher: PasswordHasher, secret_hash: str, peppered: str) -> bool:
    try:
        return hasher.verify(secret_hash, peppered)
    except (VerificationError, InvalidHashError):  # VerifyMismatchError is a VerificationError
        return False
