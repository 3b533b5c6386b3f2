"""Staff users and their tokens: who may manage them, and the audit of every change.

Only an admin manages users (``users.admin`` in the role-by-action matrix),
through the API or the CLI with their own token; the use cases here decide
it from the :class:`~recarchive.access.actors.Actor` they are given, so no
adapter can skip the check. Every change and every listing is audited with
the admin's name, role and client address.

One exception keeps an installation from locking itself out: while no
admin can act (no enabled admin holds a token in force), the system may
create an admin or issue an existing admin a token
(:func:`bootstrap_admin`). The CLI allows it to the operating system's
root on the archive's host only; the audit entry says ``bootstrap``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import select, text
from sqlalchemy.orm import Session, selectinload

from recarchive.access.actors import Actor
from recarchive.access.audit import append_event
from recarchive.access.interfaces import AccessContext
from recarchive.access.models import ApiToken, Role, User
from recarchive.access.policy import Action
from recarchive.access.services import (
    AccessError,
    IssuedToken,
    check_days,
    check_name,
    mint_token,
    parse_role,
)
from recarchive.catalogue.database import lock_for_write, transaction, utcnow
from recarchive.errors import NotFoundError

logger = logging.getLogger(__name__)


class UserExists(AccessError):
    """A user with that name already exists."""


class UserNotFound(NotFoundError, AccessError):
    """No user has that name."""


class TokenNotFound(NotFoundError, AccessError):
    """No token has that id."""


class AdminCanAct(AccessError):
    """An admin can already act, so the system may not create or re-key one."""


class LastAdmin(AccessError):
    """Disabling this user would leave no enabled admin."""


@dataclasses.dataclass(frozen=True)
class UserSummary:
    name: str
    role: Role
    created_at: dt.datetime
    disabled_at: dt.datetime | None
    active_tokens: int
    last_used_at: dt.datetime | None
    #: The telephony agent identifiers linked to an agent-role user.
    agent_ids: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class TokenSummary:
    """A token as an admin sees it: never its secret."""

    token_id: uuid.UUID
    description: str | None
    created_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None

    def in_force(self, now: dt.datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now


def _record(session: Session, actor: Actor, action: str, details: dict[str, Any]) -> None:
    append_event(
        session,
        actor=actor.name,
        actor_role=actor.role_name,
        client_addr=actor.client_addr,
        action=action,
        details=details,
    )


def _mint(
    runtime: AccessContext,
    session: Session,
    user: User,
    actor: Actor,
    days: int,
    note: str | None,
    extra: dict[str, Any] | None = None,
) -> IssuedToken:
    return mint_token(
        runtime,
        session,
        user,
        days,
        note,
        actor=actor.name,
        actor_role=actor.role_name,
        client_addr=actor.client_addr,
        extra=extra,
    )


def _lock_user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name).with_for_update())
    if user is None:
        raise UserNotFound(f"no user {name!r}")
    return user


def _insert_user(session: Session, name: str, role: Role) -> User:
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise UserExists(f"user {name!r} already exists")
    user = User(name=name, role=role)
    session.add(user)
    try:
        session.flush()
    except sa_exc.IntegrityError as exc:  # added concurrently
        raise UserExists(f"user {name!r} already exists") from exc
    return user


def add_user(
    runtime: AccessContext,
    name: str,
    role: Role | str,
    *,
    actor: Actor,
    token_days: int = 90,
    description: str | None = None,
) -> IssuedToken:
    """An admin creates a user with ``role`` and a first token, valid ``token_days`` days.

    Raises :class:`~recarchive.access.policy.Forbidden` unless ``actor`` is
    an admin, :class:`AccessError` (bad name, unknown role, lifetime out of
    range) and :class:`UserExists` (also for the name of a disabled user).
    """
    actor.require(Action.USERS_ADMIN)
    check_name(name)
    parsed = parse_role(role)
    check_days(token_days)
    with transaction(runtime.sessions) as session:
        user = _insert_user(session, name, parsed)
        details = {"user": name, "role": parsed.value}
        _record(session, actor, "users.add", details)
        return _mint(runtime, session, user, actor, token_days, description)


def issue_token(
    runtime: AccessContext,
    user_name: str,
    *,
    actor: Actor,
    days: int = 90,
    description: str | None = None,
) -> IssuedToken:
    """An admin issues another token to an enabled user.

    Raises :class:`~recarchive.access.policy.Forbidden`,
    :class:`UserNotFound` and :class:`AccessError`.
    """
    actor.require(Action.USERS_ADMIN)
    check_days(days)
    with transaction(runtime.sessions) as session:
        user = _lock_user(session, user_name)
        if user.disabled_at is not None:
            raise AccessError(f"user {user_name!r} is disabled; no token was issued")
        return _mint(runtime, session, user, actor, days, description)


def revoke_token(runtime: AccessContext, token_id: uuid.UUID, *, actor: Actor) -> str:
    """An admin revokes a token; returns its user's name.

    Raises :class:`~recarchive.access.policy.Forbidden`,
    :class:`TokenNotFound` and :class:`AccessError` (already revoked).
    """
    actor.require(Action.USERS_ADMIN)
    with transaction(runtime.sessions) as session:
        token = session.get(ApiToken, token_id, with_for_update=True)
        if token is None:
            raise TokenNotFound(f"no token {token_id}")
        if (revoked_at := token.revoked_at) is not None:
            raise AccessError(f"token {token_id} was already revoked at {revoked_at.isoformat()}")
        token.revoked_at = utcnow()
        user_name = token.user.name
        details = {"user": user_name, "token_id": str(token_id)}
        _record(session, actor, "tokens.revoke", details)
    logger.info("token_revoked", extra={"token_id": str(token_id)})
    return user_name


def _enabled_admins(session: Session) -> list[User]:
    query = select(User).where(User.role == Role.ADMIN, User.disabled_at.is_(None))
    return list(session.scalars(query.options(selectinload(User.tokens))))


def disable_user(runtime: AccessContext, name: str, *, actor: Actor) -> int:
    """An admin disables a user, revoking their tokens; returns how many.

    The last enabled admin cannot be disabled (:class:`LastAdmin`): user
    management would then be left to root's bootstrap on the archive's
    host. Raises :class:`~recarchive.access.policy.Forbidden` and
    :class:`UserNotFound`.
    """
    actor.require(Action.USERS_ADMIN)
    now = utcnow()
    with transaction(runtime.sessions) as session:
        user = _lock_user(session, name)
        if (disabled_at := user.disabled_at) is not None:
            raise AccessError(f"user {name!r} was already disabled at {disabled_at.isoformat()}")
        if user.role is Role.ADMIN and [a.name for a in _enabled_admins(session)] == [name]:
            raise LastAdmin(f"user {name!r} is the last enabled admin; add another admin first")
        user.disabled_at = now
        revoked = [token for token in user.tokens if token.revoked_at is None]
        for token in revoked:
            token.revoked_at = now
        details = {"user": name, "revoked_token_ids": sorted(str(t.id) for t in revoked)}
        _record(session, actor, "users.disable", details)
    logger.info("user_disabled", extra={"user_id": str(user.id), "tokens_revoked": len(revoked)})
    return len(revoked)


def _summary(user: User, now: dt.datetime) -> UserSummary:
    active = [t for t in user.tokens if t.revoked_at is None and t.expires_at > now]
    used = [t.last_used_at for t in user.tokens if t.last_used_at is not None]
    count = 0 if user.disabled_at else len(active)
    agents = tuple(link.agent for link in user.agent_ids)
    return UserSummary(
        user.name,
        user.role,
        user.created_at,
        user.disabled_at,
        count,
        max(used, default=None),
        agents,
    )


def list_users(
    runtime: AccessContext, *, actor: Actor, now: dt.datetime | None = None
) -> list[UserSummary]:
    """Every user, by name, with the number of usable tokens, when one was last used,
    and (for an agent) the linked agent identifiers.

    An admin's; the listing is audited (``users.list``).
    """
    actor.require(Action.USERS_ADMIN)
    now = now or utcnow()
    with transaction(runtime.sessions) as session:
        users = session.scalars(
            select(User)
            .options(selectinload(User.tokens), selectinload(User.agent_ids))
            .order_by(User.name)
        )
        summaries = [_summary(user, now) for user in users]
        details = {"users": len(summaries)}
        _record(session, actor, "users.list", details)
        return summaries


def show_user(
    runtime: AccessContext, name: str, *, actor: Actor, now: dt.datetime | None = None
) -> UserSummary:
    """One user as :func:`list_users` shows them (an admin's; audited ``users.show``)."""
    actor.require(Action.USERS_ADMIN)
    now = now or utcnow()
    with transaction(runtime.sessions) as session:
        user = session.scalar(
            select(User)
            .where(User.name == name)
            .options(selectinload(User.tokens), selectinload(User.agent_ids))
        )
        if user is None:
            raise UserNotFound(f"no user {name!r}")
        _record(session, actor, "users.show", {"user": name})
        return _summary(user, now)


def list_tokens(runtime: AccessContext, user_name: str, *, actor: Actor) -> list[TokenSummary]:
    """A user's tokens, newest first, without their secrets (an admin's; audited)."""
    actor.require(Action.USERS_ADMIN)
    with transaction(runtime.sessions) as session:
        user = session.scalar(select(User).where(User.name == user_name))
        if user is None:
            raise UserNotFound(f"no user {user_name!r}")
        tokens = sorted(user.tokens, key=lambda t: t.created_at, reverse=True)
        summaries = [
            TokenSummary(
                t.id, t.description, t.created_at, t.expires_at, t.revoked_at, t.last_used_at
            )
            for t in tokens
        ]
        details = {"user": user_name, "tokens": len(summaries)}
        _record(session, actor, "tokens.list", details)
        return summaries


def admin_can_act(session: Session, now: dt.datetime | None = None) -> str | None:
    """The name of an enabled admin holding a token in force, or None."""
    now = now or utcnow()
    for admin in _enabled_admins(session):
        if any(t.revoked_at is None and t.expires_at > now for t in admin.tokens):
            return admin.name
    return None


def bootstrap_admin(
    runtime: AccessContext,
    name: str,
    *,
    actor: Actor,
    create: bool,
    token_days: int = 90,
    description: str | None = None,
) -> IssuedToken:
    """The system creates admin ``name`` (``create``) or issues that admin a token,
    while no admin can act.

    For the first admin of an installation, and for the day every admin's
    token has expired. Refused with :class:`AdminCanAct` as soon as one
    enabled admin holds a token in force, and with :class:`AccessError`
    when ``name`` is a user of another role or disabled. The audit entry
    records the system actor (OS user and host) and ``bootstrap``.
    """
    if actor.role is not None:
        raise AccessError("bootstrap is the system's: an admin manages users with their token")
    check_name(name)
    check_days(token_days)
    with transaction(runtime.sessions) as session:
        _lock_bootstrap(session)
        if (admin := admin_can_act(session)) is not None:
            raise AdminCanAct(
                f"admin {admin!r} can already manage users: use an admin's token "
                "(--token-file or RECARCHIVE_USER_TOKEN)"
            )
        user = session.scalar(select(User).where(User.name == name).with_for_update())
        if user is None and not create:
            raise UserNotFound(f"no user {name!r}")
        if user is not None and create:
            raise UserExists(f"user {name!r} already exists")
        if user is None:
            user = _insert_user(session, name, Role.ADMIN)
            details = {"user": name, "role": Role.ADMIN.value, "bootstrap": True}
            _record(session, actor, "users.add", details)
        elif user.role is not Role.ADMIN:
            raise AccessError(f"user {name!r} is a {user.role.value}, not an admin")
        elif user.disabled_at is not None:
            raise AccessError(f"user {name!r} is disabled; bootstrap a new admin instead")
        return _mint(runtime, session, user, actor, token_days, description, {"bootstrap": True})


def _lock_bootstrap(session: Session) -> None:
    """Serialise bootstraps, so that two at once cannot both find no admin."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _BOOTSTRAP_LOCK})
    else:
        lock_for_write(session)


#: The transaction-scoped PostgreSQL advisory lock taken by :func:`bootstrap_admin`.
_BOOTSTRAP_LOCK = 0x7265_6361_7501
