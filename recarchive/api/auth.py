"""Who is calling: bearer tokens (and, for the web player's GETs, the sign-in cookie).

An Argon2 check costs tens of milliseconds, so a verified token is
remembered for ``api.token_cache_s`` seconds, keyed by a SHA-256 of the
token (the token itself is never kept). Revoking a token through this
process drops it from the cache at once; other processes see it within the
cache time.

The cookie is accepted only for safe methods (GET, HEAD): an ``<audio>``
element cannot send an Authorization header, and a cookie that cannot
change anything needs no CSRF token. It is HttpOnly and SameSite=Strict.
"""

from __future__ import annotations

import hashlib
import threading
import time

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
    """Verified tokens for a short while; thread-safe, bounded."""

    def __init__(self, ttl_s: float, max_entries: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: dict[bytes, tuple[Principal, float]] = {}
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

    def clear(self) -> None:
        """Drop every entry (after a revocation or a user being disabled)."""
        with self._lock:
            self._entries.clear()


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
    try:
        principal = authenticate(runtime, token)
    except InvalidToken as exc:
        raise Unauthenticated(exc.message) from None
    cache.put(token, principal)
    return principal
