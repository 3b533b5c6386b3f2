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


def test_expired_entries_are_checked_again_and_refusals_are_not_cached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers: list[Principal | None] = [PRINCIPAL, None]

    def check(_runtime: Any, _token: str) -> Principal:
        answer = answers.pop(0)
        if answer is None:
            raise InvalidToken()
        return answer

    monkeypatch.setattr(auth, "authenticate", check)
    cache = TokenCache(ttl_s=0.05)
    assert principal_for(None, cache, "t") == PRINCIPAL  # type: ignore[arg-type]
    assert principal_for(None, cache, "t") == PRINCIPAL  # type: ignore[arg-type]
    time.sleep(0.06)
    with pytest.raises(Unauthenticated, match="invalid or expired token"):
        principal_for(None, cache, "t")  # type: ignore[arg-type]
    assert cache.get("t") is None
    assert not TokenCache(ttl_s=0).get("t")
