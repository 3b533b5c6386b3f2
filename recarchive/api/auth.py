"""Who is calling: bearer tokens (and, for the web player's GETs, the sign-in cookie).

An Argon2 check costs tens of milliseconds, so a verified token is
remembered for ``api.token_cache_s`` seconds, keyed by a SHA-256 of the
token (the token itself is never kept): a revoked token stops working
within that time.

The cookie is accepted only for safe methods (GET, HEAD): an ``<audio>``
element cannot send an Authorization header, and a cookie that cannot
change anything needs no CSRF token. It is HttpOnly and SameSite=Strict.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Iterator

from fastapi import Request

from recarchive.access.services import InvalidToken, Principal, authenticate
from recarchive.runtime import Runtime

COOKIE_NAME = "recarchive_token"
_SAFE_METHODS = frozenset({"GET", "HEAD"})


class Unauthenticated(Exception):
    """No usable credentials: answered 401 with a ``WWW-Authenticate`` challenge."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TokenCache:
    """Verified tokens for a short while; thread-safe, bounded.

    When an entry expires while many requests of that token are in flight,
    one of them checks the token again and the others wait for its answer
    (:meth:`flight`), instead of each paying for its own Argon2 check.
    """

    def __init__(self, ttl_s: float, max_entries: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: dict[bytes, tuple[Principal, float]] = {}
        self._flights: dict[bytes, tuple[threading.Lock, int]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def get(self, token: str) -> Principal | None:
        if self.ttl_s <= 0:
            return None
        key = self._key(token)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[1] <= time.monotonic():
                del self._entries[key]
                return None
            return entry[0]

    def put(self, token: str, principal: Principal) -> None:
        if self.ttl_s <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.max_entries:
                now = time.monotonic()
                self._entries = {k: v for k, v in self._entries.items() if v[1] > now}
                if len(self._entries) >= self.max_entries:
                    self._entries.clear()
            self._entries[self._key(token)] = (principal, time.monotonic() + self.ttl_s)

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


def credentials(request: Request) -> str:
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("use 'Authorization: Bearer <token>'")
        return token.strip()
    if request.method in _SAFE_METHODS:
        cookie = request.cookies.get(COOKIE_NAME)
        if cookie:
            return cookie
    raise Unauthenticated("a token is required")


def principal_for(runtime: Runtime, cache: TokenCache, token: str) -> Principal:
    """The principal of ``token``, from the cache or a full check (:class:`Unauthenticated`)."""
    cached = cache.get(token)
    if cached is not None:
        return cached
    with cache.flight(token):
        cached = cache.get(token)  # checked meanwhile by the request we waited for
        if cached is not None:
            return cached
        try:
            principal = authenticate(runtime, token)
        except InvalidToken as exc:
            raise Unauthenticated(exc.message) from None
        cache.put(token, principal)
        return principal
