"""Staff users and their API tokens: add, issue, revoke, disable, authenticate.

A token reads ``rca_<token id as 32 hex>_<secret>``. Only an Argon2id hash of
the token pepper (a secret setting) followed by the secret is stored; the
token is returned once, when issued, and never stored, logged or audited.
Every change is audited with the actor and the user name or token id.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import re
import secrets
import uuid

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import exc as sa_exc
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from recarchive.access.audit import append_event
from recarchive.access.interfaces import AccessContext
from recarchive.access.models import ApiToken, Role, User
from recarchive.catalogue.database import transaction, utcnow
from recarchive.errors import ConflictError, NotFoundError, SecretMissing

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "rca_"  # noqa: S105 - a public marker that makes tokens easy to spot, not a secret
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
_TOKEN_PATTERN = re.compile(r"^rca_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$")
MAX_TOKEN_DAYS = 3650
#: ``last_used_at`` is written at most this often per token, to keep writes down.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


class AccessError(ConflictError):
    """The user or token change was refused."""


class UserExists(AccessError):
    """A user with that name already exists."""


class UserNotFound(NotFoundError, AccessError):
    """No user has that name."""


class TokenNotFound(AccessError):
    """No token has that id."""


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
    """Who a valid token speaks for."""

    user_id: uuid.UUID
    user_name: str
    role: Role
    token_id: uuid.UUID


@dataclasses.dataclass(frozen=True)
class UserSummary:
    name: str
    role: Role
    created_at: dt.datetime
    disabled_at: dt.datetime | None
    active_tokens: int
    last_used_at: dt.datetime | None


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


def _check_days(days: int) -> None:
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise AccessError(f"token lifetime {days} days: give 1 to {MAX_TOKEN_DAYS} days")


def _lock_user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name).with_for_update())
    if user is None:
        raise UserNotFound(f"no user {name!r}")
    return user


def _new_token(
    runtime: AccessContext, session: Session, user: User, actor: str, days: int, note: str | None
) -> IssuedToken:
    token_id, secret = uuid.uuid4(), secrets.token_urlsafe(32)
    expires_at = utcnow() + dt.timedelta(days=days)
    digest = TOKEN_HASHER.hash(_pepper(runtime) + secret)
    token = ApiToken(id=token_id, user_id=user.id, secret_hash=digest, expires_at=expires_at)
    token.description = note
    session.add(token)
    session.flush()
    details = {"user": user.name, "token_id": str(token_id), "expires_at": expires_at.isoformat()}
    append_event(session, actor=actor, action="tokens.issue", details=details)
    logger.info("token_issued", extra={"token_id": str(token_id), "user_id": str(user.id)})
    return IssuedToken(f"{TOKEN_PREFIX}{token_id.hex}_{secret}", token_id, user.name, expires_at)


def add_user(
    runtime: AccessContext,
    name: str,
    role: Role | str,
    *,
    actor: str,
    token_days: int = 90,
    description: str | None = None,
) -> IssuedToken:
    """Create a user with ``role`` and a first token, valid ``token_days`` days.

    Raises :class:`AccessError` (bad name, unknown role, lifetime out of
    range) and :class:`UserExists` (also for the name of a disabled user).
    """
    check_name(name)
    parsed = parse_role(role)
    _check_days(token_days)
    with transaction(runtime.sessions) as session:
        if session.scalar(select(User.id).where(User.name == name)) is not None:
            raise UserExists(f"user {name!r} already exists")
        user = User(name=name, role=parsed)
        session.add(user)
        try:
            session.flush()
        except sa_exc.IntegrityError as exc:  # added concurrently
            raise UserExists(f"user {name!r} already exists") from exc
        append_event(
            session, actor=actor, action="users.add", details={"user": name, "role": parsed.value}
        )
        return _new_token(runtime, session, user, actor, token_days, description)


def issue_token(
    runtime: AccessContext,
    user_name: str,
    *,
    actor: str,
    days: int = 90,
    description: str | None = None,
) -> IssuedToken:
    """Issue another token to an enabled user (:class:`UserNotFound`, :class:`AccessError`)."""
    _check_days(days)
    with transaction(runtime.sessions) as session:
        user = _lock_user(session, user_name)
        if user.disabled_at is not None:
            raise AccessError(f"user {user_name!r} is disabled; no token was issued")
        return _new_token(runtime, session, user, actor, days, description)


def revoke_token(runtime: AccessContext, token_id: uuid.UUID, *, actor: str) -> str:
    """Revoke a token; returns its user's name (:class:`TokenNotFound`; :class:`AccessError`)."""
    with transaction(runtime.sessions) as session:
        token = session.get(ApiToken, token_id, with_for_update=True)
        if token is None:
            raise TokenNotFound(f"no token {token_id}")
        if (revoked_at := token.revoked_at) is not None:
            raise AccessError(f"token {token_id} was already revoked at {revoked_at.isoformat()}")
        token.revoked_at = utcnow()
        user_name = token.user.name
        details = {"user": user_name, "token_id": str(token_id)}
        append_event(session, actor=actor, action="tokens.revoke", details=details)
    logger.info("token_revoked", extra={"token_id": str(token_id)})
    return user_name


def disable_user(runtime: AccessContext, name: str, *, actor: str) -> int:
    """Disable a user, revoking their tokens; returns how many (:class:`UserNotFound`)."""
    now = utcnow()
    with transaction(runtime.sessions) as session:
        user = _lock_user(session, name)
        if (disabled_at := user.disabled_at) is not None:
            raise AccessError(f"user {name!r} was already disabled at {disabled_at.isoformat()}")
        user.disabled_at = now
        revoked = [token for token in user.tokens if token.revoked_at is None]
        for token in revoked:
            token.revoked_at = now
        details = {"user": name, "revoked_token_ids": sorted(str(t.id) for t in revoked)}
        append_event(session, actor=actor, action="users.disable", details=details)
    logger.info("user_disabled", extra={"user_id": str(user.id), "tokens_revoked": len(revoked)})
    return len(revoked)


def list_users(runtime: AccessContext, *, now: dt.datetime | None = None) -> list[UserSummary]:
    """Every user, by name, with the number of usable tokens and when one was last used."""
    now = now or utcnow()
    with runtime.sessions() as session:
        users = session.scalars(select(User).options(selectinload(User.tokens)).order_by(User.name))
        summaries = []
        for user in users:
            active = [t for t in user.tokens if t.revoked_at is None and t.expires_at > now]
            used = [t.last_used_at for t in user.tokens if t.last_used_at is not None]
            count = 0 if user.disabled_at else len(active)
            last = max(used, default=None)
            summaries.append(
                UserSummary(user.name, user.role, user.created_at, user.disabled_at, count, last)
            )
        return summaries


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


def revalidate(
    runtime: AccessContext, principal: Principal, *, now: dt.datetime | None = None
) -> Principal:
    """Whether a token that :func:`authenticate` accepted is still in force.

    For the API's token cache: the secret was checked when the token was
    first accepted, and a token's secret never changes, so what can have
    changed since is its state (revoked, expired, its user disabled), which
    one read of the token row tells without another Argon2 check. Raises
    :class:`InvalidToken` like :func:`authenticate`.
    """
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
