"""The rules of who is asking, without a catalogue: proxies, Origin, the refusal limiter."""

from __future__ import annotations

import pytest

from recarchive.api.origin import origin_refusal
from recarchive.api.proxies import TrustedProxies
from recarchive.api.refusals import OVERFLOW_CLIENT, Refusal, RefusalLimiter

# --- trusted proxies ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trusted", "peer", "forwarded", "client"),
    [
        ([], "127.0.0.1", ["6.6.6.6"], "127.0.0.1"),  # trust no one, not even loopback
        (["10.0.0.1"], "10.0.0.2", ["6.6.6.6"], "10.0.0.2"),
        (["10.0.0.1"], "10.0.0.1", ["198.51.100.7"], "198.51.100.7"),
        (["10.0.0.1"], "10.0.0.1", ["6.6.6.6, 198.51.100.7"], "198.51.100.7"),
        (["10.0.0.0/8"], "10.0.0.1", ["6.6.6.6, 198.51.100.7, 10.9.9.9"], "198.51.100.7"),
        (["10.0.0.0/8"], "10.0.0.1", ["6.6.6.6", "198.51.100.7"], "198.51.100.7"),
        (["10.0.0.0/8"], "10.0.0.1", ["10.2.2.2, 10.3.3.3"], "10.2.2.2"),
        (["10.0.0.1"], "10.0.0.1", ["junk, 198.51.100.7"], "198.51.100.7"),
        (["10.0.0.1"], "10.0.0.1", ["198.51.100.7, junk"], "10.0.0.1"),
        (["10.0.0.1"], "10.0.0.1", [], "10.0.0.1"),
        (["10.0.0.1"], "10.0.0.1", ["[2001:db8::1]:4711"], "2001:db8::1"),
        (["10.0.0.1"], "10.0.0.1", ["198.51.100.7:4711"], "198.51.100.7"),
        (["::1"], "::1", ["2001:db8::2"], "2001:db8::2"),
        (["10.0.0.1"], "::ffff:10.0.0.1", ["198.51.100.7"], "198.51.100.7"),
        (["10.0.0.1"], "testclient", ["198.51.100.7"], "testclient"),
        (["10.0.0.1"], None, ["198.51.100.7"], None),
    ],
)
def test_the_client_is_the_right_most_untrusted_address(
    trusted: list[str], peer: str | None, forwarded: list[str], client: str | None
) -> None:
    assert TrustedProxies(trusted).client(peer, forwarded) == client


def test_the_scheme_comes_from_a_trusted_proxy_only() -> None:
    proxies = TrustedProxies(["10.0.0.1"])
    assert proxies.scheme("10.0.0.1", "http", "https") == "https"
    assert proxies.scheme("10.0.0.2", "http", "https") == "http"
    assert proxies.scheme("10.0.0.1", "http", "gopher") == "http"
    assert proxies.scheme("10.0.0.1", "http", None) == "http"


# --- Origin -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"origin": "http://archive.example:8080"}, None),
        ({"origin": "http://ARCHIVE.example:8080"}, None),
        ({"referer": "http://archive.example:8080/player"}, None),
        ({"origin": "http://archive.example"}, "foreign_origin"),  # port 80, not 8080
        ({"origin": "https://archive.example:8080"}, "foreign_origin"),
        ({"origin": "http://evil.example:8080"}, "foreign_origin"),
        ({"origin": "null"}, "foreign_origin"),
        ({"origin": "null", "referer": "http://archive.example:8080/"}, "foreign_origin"),
        ({"origin": "http://archive.example:8080.evil.example"}, "foreign_origin"),
        ({"referer": "http://evil.example/archive.example:8080"}, "foreign_referer"),
        ({"referer": "not a url"}, "foreign_referer"),
        ({}, "missing_origin"),
    ],
)
def test_origin_must_be_this_site(headers: dict[str, str], reason: str | None) -> None:
    request = {"host": "archive.example:8080", **headers}
    assert origin_refusal(request, "http") == reason


def test_behind_a_tls_proxy_the_origin_may_say_https() -> None:
    headers = {"host": "archive.example", "origin": "https://archive.example"}
    assert origin_refusal(headers, "http") == "foreign_origin"
    assert origin_refusal(headers, "http", also_https=True) is None
    assert origin_refusal(headers, "https") is None


# --- the refusal limiter ------------------------------------------------------------------


def refusal(client: str = "192.0.2.1", reason: str = "malformed") -> Refusal:
    return Refusal("auth.refused", reason, "GET", "/api/v1/me", client)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_each_client_and_reason_gets_its_entries_then_a_count() -> None:
    clock = Clock()
    limiter = RefusalLimiter(3, clock=clock)
    written = [entry for _ in range(100) for entry in limiter.admit(refusal())]
    assert [e.action for e in written] == ["auth.refused"] * 3
    assert len(limiter.admit(refusal(reason="revoked"))) == 1  # another reason
    assert len(limiter.admit(refusal(client="192.0.2.2"))) == 1  # another client
    assert limiter.due() == []
    clock.now = 59.9
    assert limiter.due() == []
    clock.now = 60.0
    [summary] = limiter.due()
    assert summary.action == "refusals.suppressed"
    assert summary.client_addr == "192.0.2.1"
    assert summary.details is not None
    assert summary.details["suppressed"] == 97
    assert summary.details["recorded"] == 3
    assert limiter.due() == []  # said once
    assert len(limiter.admit(refusal())) == 1  # a new window


def test_the_next_refusal_brings_the_count_of_a_closed_window() -> None:
    clock = Clock()
    limiter = RefusalLimiter(1, clock=clock)
    limiter.admit(refusal())
    limiter.admit(refusal())
    assert limiter.next_close() == 60.0
    clock.now = 120.0
    entries = limiter.admit(refusal(client="192.0.2.9"))
    assert [e.action for e in entries] == ["refusals.suppressed", "auth.refused"]


def test_many_clients_share_one_window_per_reason() -> None:
    limiter = RefusalLimiter(2, max_windows=4, clock=Clock())
    entries = [e for n in range(50) for e in limiter.admit(refusal(client=f"198.51.100.{n}"))]
    assert len(entries) == 4 + 2  # four clients of their own, then two for everyone else
    assert limiter.next_close() is not None
    limiter.clock = lambda: 60.0
    [summary] = limiter.due()
    assert summary.client_addr is None
    assert summary.details is not None
    assert summary.details["clients"] == "many"
    assert summary.details["suppressed"] == 50 - 6
    assert OVERFLOW_CLIENT not in str(summary.details)
