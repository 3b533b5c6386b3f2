"""Single sign-ons in progress: the state, nonce and PKCE verifier, kept server-side.

Starting a sign-on (:func:`begin_sign_in`) draws a random state, nonce and
PKCE code verifier and a random browser cookie, and stores the first three
with the SHA-256 of the state and of the cookie in ``pending_sign_ins``; the
state goes to the provider, the cookie to the browser that started. The
provider's answer (:func:`take_sign_in`) names the state: the row is taken,
that is deleted, by the first answer that names it, whatever comes of it,
and is honoured only when the answer comes from the same browser (its cookie)
within ``oidc.sign_in_minutes``. So a replayed answer, a forged or altered
state, an answer carried to another browser (login CSRF) or a late one opens
nothing. The rows hold no personal data (no one is known before the answer);
expired ones are swept at every start.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import logging
import secrets

from sqlalchemy import delete, func, select

from recarchive.access.interfaces import AccessContext
from recarchive.access.models import PendingSignIn
from recarchive.catalogue.database import lock_for_write, transaction, utcnow
from recarchive.errors import RefusedError

logger = logging.getLogger(__name__)

#: Longer than any state or cookie this module issues; a longer one is refused unread.
MAX_SECRET_CHARS = 128
#: Sign-ons in progress at most (each lives minutes): a flood of starts cannot fill the table.
MAX_PENDING = 10_000


class SignInFailed(RefusedError):
    """the single sign-on could not be completed; start again from the sign-in page"""

    #: Why, for the log and the audit entry of the refusal: ``unknown_state``,
    #: ``expired_state``, ``other_browser``, ``provider_error``, ``wrong_issuer``,
    #: ``token_refused``, ``invalid_id_token``, ``wrong_nonce``, ``invalid_userinfo``...
    reason: str = "sign_in_failed"

    def __init__(self, reason: str, message: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class StartedSignIn:
    """A sign-on just started: ``browser_cookie`` and ``state`` are their only copies."""

    browser_cookie: str = dataclasses.field(repr=False)
    state: str = dataclasses.field(repr=False)
    nonce: str = dataclasses.field(repr=False)
    code_verifier: str = dataclasses.field(repr=False)
    redirect_url: str
    expires_at: dt.datetime


@dataclasses.dataclass(frozen=True)
class TakenSignIn:
    """What the provider's answer is checked against."""

    nonce: str = dataclasses.field(repr=False)
    code_verifier: str = dataclasses.field(repr=False)
    redirect_url: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def begin_sign_in(
    runtime: AccessContext, redirect_url: str, *, now: dt.datetime | None = None
) -> StartedSignIn:
    """Store a new sign-on's secrets for ``oidc.sign_in_minutes``; sweep the expired ones.

    Refused (:class:`SignInFailed`, ``too_many_sign_ins``) while :data:`MAX_PENDING`
    sign-ons are in progress.
    """
    now = now or utcnow()
    lifetime = dt.timedelta(minutes=runtime.settings.oidc.sign_in_minutes)
    started = StartedSignIn(
        browser_cookie=secrets.token_urlsafe(32),
        state=secrets.token_urlsafe(32),
        nonce=secrets.token_urlsafe(32),
        # 64 random bytes: 86 characters, within RFC 7636's 43 to 128.
        code_verifier=secrets.token_urlsafe(64),
        redirect_url=redirect_url,
        expires_at=now + lifetime,
    )
    with transaction(runtime.sessions) as session:
        session.execute(delete(PendingSignIn).where(PendingSignIn.expires_at <= now))
        pending = session.scalar(select(func.count()).select_from(PendingSignIn)) or 0
        if pending >= MAX_PENDING:
            logger.warning("sign_ins_exhausted", extra={"pending": pending})
            raise SignInFailed(
                "too_many_sign_ins", "too many sign-ins are in progress; try again in a few minutes"
            )
        session.add(
            PendingSignIn(
                state_hash=_digest(started.state),
                browser_hash=_digest(started.browser_cookie),
                nonce=started.nonce,
                code_verifier=started.code_verifier,
                redirect_url=redirect_url,
                created_at=now,
                expires_at=started.expires_at,
            )
        )
    logger.info("sign_in_started", extra={"expires_at": started.expires_at.isoformat()})
    return started


def take_sign_in(
    runtime: AccessContext,
    state: str,
    browser_cookie: str | None,
    *,
    now: dt.datetime | None = None,
) -> TakenSignIn:
    """The sign-on ``state`` names, deleted so that no other answer can use it.

    Raises :class:`SignInFailed`: ``unknown_state`` (never issued, or already
    taken), ``expired_state``, ``other_browser`` (the cookie that started it
    is missing or another).
    """
    now = now or utcnow()
    if not state or len(state) > MAX_SECRET_CHARS:
        raise _failed("unknown_state")
    with transaction(runtime.sessions) as session:
        lock_for_write(session)
        row = session.scalar(
            select(PendingSignIn)
            .where(PendingSignIn.state_hash == _digest(state))
            .with_for_update()
        )
        if row is None:
            raise _failed("unknown_state")
        session.delete(row)
        taken = TakenSignIn(row.nonce, row.code_verifier, row.redirect_url)
        browser_hash, expires_at = row.browser_hash, row.expires_at
    cookie_ok = bool(browser_cookie) and len(browser_cookie or "") <= MAX_SECRET_CHARS
    if not cookie_ok or not hmac.compare_digest(browser_hash, _digest(browser_cookie or "")):
        raise _failed("other_browser")
    if expires_at <= now:
        raise _failed("expired_state")
    return taken


def _failed(reason: str) -> SignInFailed:
    logger.info("sign_in_refused", extra={"reason": reason})
    return SignInFailed(reason)
