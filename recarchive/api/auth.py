"""Who is calling: a bearer token, or the web player's session cookie (GET and HEAD only,
and the case and QA routes the web pages work through).

An Argon2 check costs tens of milliseconds, so a verified token is
remembered for ``api.token_cache_s`` seconds, keyed by a SHA-256 of the
token (the token itself is never kept): a revoked token stops working
within that time. After that the token's state is read again (revoked,
expired, user disabled: one row, no Argon2, since the secret presented is
the one already checked); its secret is checked in full again after
:data:`VERIFIED_S`, or when the process restarts.

The cookie holds a web session's secret, never a token
(:mod:`recarchive.access.sessions`), and is checked in the catalogue on
every request: a session signed out, timed out, or whose token was revoked
stops working at once, in every process. It is accepted for safe methods
(GET, HEAD) only: an ``<audio>`` element cannot send an Authorization header,
and a cookie that cannot change anything gives a forged request nothing to
do. It is HttpOnly, SameSite=Strict, and Origin is checked on every other
method that carries it (:mod:`recarchive.api.origin`).

The exceptions: the web player's case pages open, link, annotate, close and
export dispute cases; its player writes, edits and deletes a QA trainer's
notes on a call's timeline; its QA pages create sampling plans, draw
samples, save and submit evaluations, answer an agent's dispute, and cut and
delete clips; an agent's pages acknowledge and dispute the agent's own
evaluations. The routes under
:data:`COOKIE_WRITES` take the cookie for every method. Such a request
passes the Origin check first, and the cookie is never sent by another
site's page (SameSite=Strict).
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator

from fastapi import Request

from recarchive.access.services import InvalidToken, Principal, authenticate, revalidate
from recarchive.access.sessions import resume_session
from recarchive.runtime import Runtime

COOKIE_NAME = "recarchive_session"
_SAFE_METHODS = frozenset({"GET", "HEAD"})
#: Route templates (each, and the routes under it) that take the cookie for any method:
#: the case pages' API, the QA notes of the player, and what the QA pages change (plans
#: and their samples, evaluations and answers, clips) and an agent's own evaluations
#: (acknowledge, dispute). Not the scorecard forms: they stay in the CLI.
COOKIE_WRITES = (
    "/api/v1/cases",
    "/api/v1/recordings/{recording_id}/notes",
    "/api/v1/qa/notes",
    "/api/v1/qa/plans",
    "/api/v1/qa/evaluations",
    "/api/v1/qa/clips",
    "/api/v1/qa/my",
)
#: How long a token's secret, once checked, is not checked again (its state still is,
#: every ``token_cache_s``).
VERIFIED_S = 3600.0


class Unauthenticated(Exception):
    """No usable credentials: answered 401 with a ``WWW-Authenticate`` challenge.

    ``reason`` and what is known of the token and its user go to the audit
    entry of the refusal (:mod:`recarchive.api.refusals`), never to the caller.
    """

    def __init__(self, message: str, reason: str, refused: InvalidToken | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.refused = refused

    @classmethod
    def of(cls, refused: InvalidToken) -> Unauthenticated:
        return cls(refused.message, refused.reason, refused)


class TokenCache:
    """Verified tokens for a short while; thread-safe, bounded.

    An entry is *fresh* for ``ttl_s`` (used as it is), then *verified* until
    ``verified_s`` after its secret was checked (its state is read again,
    :func:`~recarchive.access.services.revalidate`). When an entry goes
    stale while many requests of that token are in flight, one of them
    checks the token again and the others wait for its answer
    (:meth:`flight`).
    """

    def __init__(
        self,
        ttl_s: float,
        max_entries: int = 10_000,
        verified_s: float = VERIFIED_S,
        *,
        clock: Callable[[], float] = time.monotonic,
    ):
        """``clock``: monotonic seconds (a test's own clock, to step past the times)."""
        self.ttl_s = ttl_s
        self._clock = clock
        self.verified_s = max(verified_s, ttl_s)
        self.max_entries = max_entries
        #: key -> (principal, fresh until, secret verified until), monotonic seconds
        self._entries: dict[bytes, tuple[Principal, float, float]] = {}
        self._flights: dict[bytes, tuple[threading.Lock, int]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def _lookup(self, token: str, *, fresh: bool) -> Principal | None:
        if self.ttl_s <= 0:
            return None
        key = self._key(token)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            principal, fresh_until, verified_until = entry
            now = self._clock()
            if verified_until <= now:
                del self._entries[key]
                return None
            until = fresh_until if fresh else verified_until
            return principal if until > now else None

    def get(self, token: str) -> Principal | None:
        """The principal of a fresh entry."""
        return self._lookup(token, fresh=True)

    def verified(self, token: str) -> Principal | None:
        """The principal of an entry whose secret was checked, fresh or not."""
        return self._lookup(token, fresh=False)

    def put(self, token: str, principal: Principal, *, secret_checked: bool = True) -> None:
        """Remember ``principal`` as fresh; ``secret_checked`` restarts the verified time."""
        if self.ttl_s <= 0:
            return
        key = self._key(token)
        with self._lock:
            now = self._clock()
            previous = self._entries.get(key)
            if secret_checked or previous is None:
                verified_until = now + self.verified_s
            else:
                verified_until = previous[2]
            if key not in self._entries and len(self._entries) >= self.max_entries:
                self._entries = {k: v for k, v in self._entries.items() if v[2] > now}
                if len(self._entries) >= self.max_entries:
                    self._entries.clear()
            self._entries[key] = (principal, now + self.ttl_s, verified_until)

    def forget(self, token: str) -> None:
        with self._lock:
            self._entries.pop(self._key(token), None)

    def forget_where(
        self, *, token_id: uuid.UUID | None = None, user_name: str | None = None
    ) -> None:
        """Drop the entries of a token just revoked or a user just disabled, in this process.

        Other processes notice within ``ttl_s``, when they read the token's state again.
        """
        with self._lock:
            self._entries = {
                key: entry
                for key, entry in self._entries.items()
                if entry[0].token_id != token_id and entry[0].user_name != user_name
            }

    @contextlib.contextmanager
    def flight(self, token: str) -> Iterator[None]:
        """Held while ``token`` is being checked: one check per token at a time."""
        key = self._key(token)
        with self._lock:
            lock, waiting = self._flights.get(key, (threading.Lock(), 0))
            self._flights[key] = (lock, waiting + 1)
        try:
            with lock:
                yield
        finally:
            with self._lock:
                lock, waiting = self._flights[key]
                if waiting <= 1:
                    del self._flights[key]
                else:
                    self._flights[key] = (lock, waiting - 1)


def credentials(request: Request) -> tuple[str, str]:
    """``("bearer", token)`` or ``("session", cookie)``; :class:`Unauthenticated` if neither."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("use 'Authorization: Bearer <token>'", "malformed_header")
        return "bearer", token.strip()
    if request.method in _SAFE_METHODS or _writes_with_cookie(request):
        cookie = request.cookies.get(COOKIE_NAME)
        if cookie:
            return "session", cookie
    raise Unauthenticated("a token is required", "missing_token")


def _writes_with_cookie(request: Request) -> bool:
    """Whether the request's route is one of :data:`COOKIE_WRITES` (its template, as routed:
    not the raw path)."""
    template = getattr(request.scope.get("route"), "path", "")
    return any(template == p or template.startswith(f"{p}/") for p in COOKIE_WRITES)


def session_principal(runtime: Runtime, cookie: str) -> Principal:
    """The principal of a web session's cookie (:class:`Unauthenticated` when it has ended)."""
    try:
        return resume_session(runtime, cookie)
    except InvalidToken as exc:
        raise Unauthenticated.of(exc) from None


def principal_for(runtime: Runtime, cache: TokenCache, token: str) -> Principal:
    """The principal of ``token``, from the cache or a check (:class:`Unauthenticated`)."""
    cached = cache.get(token)
    if cached is not None:
        return cached
    with cache.flight(token):
        cached = cache.get(token)  # checked meanwhile by the request we waited for
        if cached is not None:
            return cached
        known = cache.verified(token)
        try:
            if known is not None:
                principal = revalidate(runtime, known)
            else:
                principal = authenticate(runtime, token)
        except InvalidToken as exc:
            cache.forget(token)
            raise Unauthenticated.of(exc) from None
        cache.put(token, principal, secret_checked=known is None)
        return principal
