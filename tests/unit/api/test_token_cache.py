"""The API's token cache: remembered for a while, checked once per token when it expires."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest

from recarchive.access.models import Role
from recarchive.access.services import InvalidToken, Principal
from recarchive.api import auth
from recarchive.api.auth import TokenCache, Unauthenticated, principal_for

PRINCIPAL = Principal(uuid.uuid4(), "maija", Role.DISPUTE_HANDLER, uuid.uuid4())


class Clock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_concurrent_requests_of_one_token_share_one_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checks: list[str] = []

    def slow_check(_runtime: Any, token: str) -> Principal:
        checks.append(token)
        time.sleep(0.2)  # an Argon2 check under load
        return PRINCIPAL

    monkeypatch.setattr(auth, "authenticate", slow_check)
    cache = TokenCache(ttl_s=30)
    barrier = threading.Barrier(12)
    results: list[Principal] = []

    def request(token: str) -> None:
        barrier.wait()
        results.append(principal_for(None, cache, token))  # type: ignore[arg-type]

    threads = [
        threading.Thread(target=request, args=("token-a" if i < 10 else "token-b",))
        for i in range(12)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(checks) == ["token-a", "token-b"]  # one check per token, not per request
    assert results == [PRINCIPAL] * 12
    assert cache._flights == {}


def test_stale_entries_have_their_state_read_again_without_an_argon2_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    states: list[bool] = [True, False]

    def check(_runtime: Any, _token: str) -> Principal:
        calls.append("authenticate")
        return PRINCIPAL

    def still_valid(_runtime: Any, principal: Principal) -> Principal:
        calls.append("revalidate")
        if not states.pop(0):
            raise InvalidToken()
        return principal

    monkeypatch.setattr(auth, "authenticate", check)
    monkeypatch.setattr(auth, "revalidate", still_valid)
    clock = Clock()
    cache = TokenCache(ttl_s=30, clock=clock)
    assert principal_for(None, cache, "t") == PRINCIPAL  # type: ignore[arg-type]
    clock.advance(29.9)
    assert principal_for(None, cache, "t") == PRINCIPAL  # type: ignore[arg-type]
    assert calls == ["authenticate"]
    clock.advance(0.2)
    assert principal_for(None, cache, "t") == PRINCIPAL  # type: ignore[arg-type]
    assert calls == ["authenticate", "revalidate"]
    clock.advance(30.1)
    with pytest.raises(Unauthenticated, match="invalid or expired token"):
        principal_for(None, cache, "t")  # type: ignore[arg-type]
    assert calls == ["authenticate", "revalidate", "revalidate"]
    # A refusal is not cached, and the next try checks the secret in full.
    assert cache.get("t") is None
    assert cache.verified("t") is None
    principal_for(None, cache, "t")  # type: ignore[arg-type]
    assert calls[-1] == "authenticate"
    assert not TokenCache(ttl_s=0).get("t")


def test_the_secret_is_checked_in_full_again_after_the_verified_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(auth, "authenticate", lambda _r, _t: calls.append("a") or PRINCIPAL)
    monkeypatch.setattr(auth, "revalidate", lambda _r, p: calls.append("r") or p)
    clock = Clock()
    cache = TokenCache(ttl_s=20, verified_s=100, clock=clock)
    principal_for(None, cache, "t")  # type: ignore[arg-type]
    for _ in range(20):  # 500 s, a request every 25 s
        clock.advance(25)
        principal_for(None, cache, "t")  # type: ignore[arg-type]
    # Revalidations do not extend the verified time: a full check every 100 s, and
    # between two of them the state is read again at each request (each is stale).
    assert calls.count("a") == 1 + 5
    assert calls.count("r") == 20 - 5
    assert "".join(calls).startswith("arrrarrr")
