"""Web-player sessions: what the sign-in cookie stands for.

Signing in opens a session: 32 random bytes go into the browser's cookie,
their SHA-256 into ``web_sessions`` with the user and, for a sign-in with a
token, that token (the token itself is not kept anywhere); a single sign-on
(:mod:`recarchive.access.federation`) opens one for its user alone. Every
request that comes with the cookie resumes the session: it must exist, be
younger than ``api.session_hours``, have seen a request within
``api.session_idle_minutes``, and its user must still be enabled and, for a
token's session, its token still in force (not revoked or expired:
:func:`~recarchive.access.services.token_in_force`). The role is read again
each time, so a changed role applies at once. Signing out deletes the row,
so a copy of the cookie replayed later opens nothing.

Rows are deleted at sign-out, when a request finds the session ended, and
by :func:`sweep_sessions`, which every sign-in and every refresh of
``last_seen_at`` (at most once a minute per session) runs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import secrets
import uuid

from sqlalchemy import delete, or_, select

from recarchive.access.audit import append_event
from recarchive.access.interfaces import AccessContext
from recarchive.access.models import User, WebSession
from recarchive.access.services import InvalidToken, Principal, token_in_force
from recarchive.catalogue.database import transaction, utcnow

logger = logging.getLogger(__name__)

#: ``last_seen_at`` is written at most this often per session, to keep writes down.
SEEN_RESOLUTION = dt.timedelta(minutes=1)
#: Longer than any cookie this module issues; a longer one is refused unread.
COOKIE_MAX_CHARS = 64


class SessionEnded(InvalidToken):
    """your sign-in has ended; sign in again"""


@dataclasses.dataclass(frozen=True)
class OpenedSession:
    """A session just opened: ``cookie`` is the only copy of its secret."""

    cookie: str = dataclasses.field(repr=False)
    session_id: uuid.UUID
    principal: Principal
    expires_at: dt.datetime


def _digest(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


def _limits(runtime: AccessContext) -> tuple[dt.timedelta, dt.timedelta]:
    api = runtime.settings.api
    return dt.timedelta(minutes=api.session_idle_minutes), dt.timedelta(hours=api.session_hours)


def open_session(
    runtime: AccessContext,
    principal: Principal,
    *,
    client_addr: str | None = None,
    now: dt.datetime | None = None,
) -> OpenedSession:
    """Open a session for ``principal`` (whose token, or single sign-on, was just checked);
    audited as ``session.start``, with the token id or ``"method": "oidc"``."""
    now = now or utcnow()
    _idle, lifetime = _limits(runtime)
    cookie = secrets.token_urlsafe(32)
    row = WebSession(
        secret_hash=_digest(cookie),
        user_id=principal.user_id,
        token_id=principal.token_id,
        created_at=now,
        last_seen_at=now,
        expires_at=now + lifetime,
    )
    with transaction(runtime.sessions) as session:
        session.add(row)
        session.flush()
        append_event(
            session,
            actor=principal.user_name,
            actor_role=principal.role.value,
            action="session.start",
            client_addr=client_addr,
            details={"session_id": str(row.id), **_how(principal)},
        )
    sweep_sessions(runtime, now=now)
    logger.info("session_opened", extra={"session_id": str(row.id)})
    return OpenedSession(cookie, row.id, principal, row.expires_at)


def resume_session(
    runtime: AccessContext, cookie: str, *, now: dt.datetime | None = None
) -> Principal:
    """The principal of the session ``cookie`` stands for, refreshed; :class:`SessionEnded` if
    there is none (or it timed out), :class:`InvalidToken` if its user is disabled or its
    token is no longer in force.

    A session found ended is deleted. ``last_seen_at`` moves on at most once
    a minute (:data:`SEEN_RESOLUTION`), so the idle timeout is exact to
    within that.
    """
    now = now or utcnow()
    if not cookie or len(cookie) > COOKIE_MAX_CHARS:
        raise SessionEnded()
    idle, _lifetime = _limits(runtime)
    with transaction(runtime.sessions) as session:
        row = session.scalar(select(WebSession).where(WebSession.secret_hash == _digest(cookie)))
        if row is None:
            raise _ended("unknown_session")
        session_id, token_id, user_id = row.id, row.token_id, row.user_id
        last_seen = row.last_seen_at
        ended = row.expires_at <= now or last_seen + idle <= now
        if ended:
            session.delete(row)
        elif now - last_seen >= SEEN_RESOLUTION:
            row.last_seen_at = now
    if ended:
        raise _ended("session_timed_out", session_id, token_id, user_id)
    try:
        if token_id is not None:
            principal = token_in_force(runtime, token_id, now=now)
        else:
            principal = user_in_force(runtime, user_id)
    except InvalidToken:
        end_session(runtime, cookie, reason="token_refused" if token_id else "user_refused")
        raise
    if now - last_seen >= SEEN_RESOLUTION:
        sweep_sessions(runtime, now=now)
    return principal


def end_session(
    runtime: AccessContext,
    cookie: str,
    *,
    reason: str = "signed_out",
    client_addr: str | None = None,
    principal: Principal | None = None,
) -> bool:
    """Delete the session ``cookie`` stands for; whether there was one.

    A sign-out (``principal`` given) is audited as ``session.end``.
    """
    if not cookie or len(cookie) > COOKIE_MAX_CHARS:
        return False
    with transaction(runtime.sessions) as session:
        row = session.scalar(select(WebSession).where(WebSession.secret_hash == _digest(cookie)))
        if row is None:
            return False
        session_id = row.id
        session.delete(row)
        if principal is not None:
            append_event(
                session,
                actor=principal.user_name,
                actor_role=principal.role.value,
                action="session.end",
                client_addr=client_addr,
                details={"session_id": str(session_id), "reason": reason},
            )
    logger.info("session_ended", extra={"session_id": str(session_id), "reason": reason})
    return True


def sweep_sessions(runtime: AccessContext, *, now: dt.datetime | None = None) -> int:
    """Delete every session past its lifetime or idle timeout; how many.

    Irreversible: the rows go (their users sign in again). Runs at each
    sign-in and at each refresh of a session's ``last_seen_at``.
    """
    now = now or utcnow()
    idle, _lifetime = _limits(runtime)
    with transaction(runtime.sessions) as session:
        result = session.execute(
            delete(WebSession).where(
                or_(WebSession.expires_at <= now, WebSession.last_seen_at <= now - idle)
            )
        )
        count = int(getattr(result, "rowcount", 0) or 0)
    if count:
        logger.info("sessions_swept", extra={"sessions": count})
    return count


def user_in_force(runtime: AccessContext, user_id: uuid.UUID) -> Principal:
    """The principal of a session without a token: its user, unless gone or disabled."""
    with runtime.sessions() as session:
        user = session.get(User, user_id)
        if user is None or user.disabled_at is not None:
            reason = "unknown_user" if user is None else "user_disabled"
            logger.info("session_user_refused", extra={"reason": reason, "user_id": str(user_id)})
            refused = InvalidToken()
            refused.reason, refused.user_id = reason, user_id
            if user is not None:
                refused.user_name, refused.role = user.name, user.role
            raise refused
        return Principal(user.id, user.name, user.role)


def _how(principal: Principal) -> dict[str, str]:
    """How a session was opened, for its audit entries: the token, or single sign-on."""
    if principal.token_id is None:
        return {"method": "oidc"}
    return {"token_id": str(principal.token_id)}


def _ended(
    reason: str,
    session_id: uuid.UUID | None = None,
    token_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
) -> SessionEnded:
    logger.info(
        "session_refused",
        extra={"reason": reason, "session_id": str(session_id) if session_id else None},
    )
    refused = SessionEnded()
    refused.reason, refused.token_id, refused.user_id = reason, token_id, user_id
    return refused
