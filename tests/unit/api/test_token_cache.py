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
    cache = TokenCache(ttl_s=0.05)
    assert principal_for(None, cache, "t") == PRINCIPAL  # type: ignore[arg-type]
    assert principal_for(None, cache, "t") == PRINCIPAL  # type: ignore[arg-type]
    assert calls == ["authenticate"]
    time.sleep(0.06)
    assert principal_for(None, cache, "t") == PRINCIPAL  # type: ignore[arg-type]
    assert calls == ["authenticate", "revalidate"]
    time.sleep(0.06)
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
    cache = TokenCache(ttl_s=0.02, verified_s=0.1)
    principal_for(None, cache, "t")  # type: ignore[arg-type]
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        principal_for(None, cache, "t")  # type: ignore[arg-type]
        time.sleep(0.025)
    # Revalidations do not extend the verified time: a full check every 0.1 s.
    assert calls.count("a") >= 4
    assert calls.count("r") >= calls.count("a")
