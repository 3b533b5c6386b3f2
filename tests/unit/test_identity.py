"""Phone numbers to E.164, henkilötunnus and Y-tunnus, and the keyed identity hash."""

from __future__ import annotations

import pytest

from recarchive.catalogue.identity import (
    InvalidIdentityCode,
    InvalidPhoneNumber,
    UnknownRegion,
    hash_identity_code,
    identity_hash,
    normalise_phone,
    parse_identity_code,
    try_normalise_phone,
)
from recarchive.catalogue.models import IdentityKind
from recarchive.errors import ConfigError, RecArchiveError

KEY = "k" * 48
OTHER_KEY = "o" * 48


@pytest.mark.parametrize(
    ("text", "e164"),
    [
        # Finnish mobiles, as people and telephony systems write them.
        ("040 123 4567", "+358401234567"),
        ("0401234567", "+358401234567"),
        ("040-1234567", "+358401234567"),
        ("+358 40 1234567", "+358401234567"),
        ("+358401234567", "+358401234567"),
        ("00358401234567", "+358401234567"),
        ("358401234567", "+358401234567"),
        ("  050 765 4321 ", "+358507654321"),
        # Landlines and service numbers.
        ("(09) 123 4567", "+35891234567"),
        ("09 1234567", "+35891234567"),
        ("+358 9 123 4567", "+35891234567"),
        ("017 123 4567", "+358171234567"),
        ("010 123 4567", "+358101234567"),
        ("0800 123 456", "+358800123456"),
        # Swedish numbers, with +, with 00, and as a CDR hands them over without +.
        ("+46 70 123 45 67", "+46701234567"),
        ("0046 8 123 456 78", "+46812345678"),
        ("46701234567", "+46701234567"),
        # An extension is dropped: caller ids never carry one.
        ("040 123 4567 ext 5", "+358401234567"),
    ],
)
def test_spellings_normalise_to_e164(text: str, e164: str) -> None:
    assert normalise_phone(text) == e164
    assert try_normalise_phone(text) == e164


def test_region_decides_what_a_national_number_means() -> None:
    assert normalise_phone("070 123 45 67", region="SE") == "+46701234567"
    assert normalise_phone("+358401234567", region="SE") == "+358401234567"


@pytest.mark.parametrize(
    "text",
    ["", "   ", "anonymous", "Anonymous", "Restricted", "unknown", "<unknown>", "Private",
     "asterisk", "+358", "112", "12", "0801234567", "1234567890123456789", "9" * 80],
)  # fmt: skip
def test_not_a_number(text: str) -> None:
    assert try_normalise_phone(text) is None
    with pytest.raises(InvalidPhoneNumber) as caught:
        normalise_phone(text)
    assert isinstance(caught.value, RecArchiveError)
    if text.strip():
        assert text.strip() not in caught.value.message


def test_message_never_quotes_the_number() -> None:
    with pytest.raises(InvalidPhoneNumber) as caught:
        normalise_phone("0801234567")
    assert caught.value.message == "phone number is not a valid number for region FI"


def test_try_normalise_takes_none() -> None:
    assert try_normalise_phone(None) is None


def test_unknown_region_is_a_configuration_error() -> None:
    with pytest.raises(UnknownRegion) as caught:
        try_normalise_phone("0401234567", region="XX")
    assert isinstance(caught.value, ConfigError)


@pytest.mark.parametrize(
    ("text", "kind", "canonical"),
    [
        ("131052-308T", IdentityKind.HENKILOTUNNUS, "131052-308T"),
        ("131052-308t", IdentityKind.HENKILOTUNNUS, "131052-308T"),
        (" 131052-308T\n", IdentityKind.HENKILOTUNNUS, "131052-308T"),
        ("010101+0101", IdentityKind.HENKILOTUNNUS, "010101+0101"),
        ("131052A308T", IdentityKind.HENKILOTUNNUS, "131052A308T"),
        # Century signs added in 2023 (1900s: Y X W V U; 2000s: B C D E F).
        ("010594Y9032", IdentityKind.HENKILOTUNNUS, "010594Y9032"),
        ("010594Y9021", IdentityKind.HENKILOTUNNUS, "010594Y9021"),
        ("131052X308T", IdentityKind.HENKILOTUNNUS, "131052X308T"),
        ("131052U308T", IdentityKind.HENKILOTUNNUS, "131052U308T"),
        ("010105B123P", IdentityKind.HENKILOTUNNUS, "010105B123P"),
        ("010105F123P", IdentityKind.HENKILOTUNNUS, "010105F123P"),
        ("2077474-0", IdentityKind.YTUNNUS, "20774740"),
        ("20774740", IdentityKind.YTUNNUS, "20774740"),
        (" 2077474 - 0 ", IdentityKind.YTUNNUS, "20774740"),
        ("0112038-9", IdentityKind.YTUNNUS, "01120389"),
        ("112038-9", IdentityKind.YTUNNUS, "01120389"),
    ],
)
def test_identity_codes(text: str, kind: IdentityKind, canonical: str) -> None:
    assert parse_identity_code(text) == (kind, canonical)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("131052-308U", "henkilötunnus has an invalid check character"),
        ("010594Y9033", "henkilötunnus has an invalid check character"),
        ("310252-308T", "henkilötunnus has an invalid date"),
        ("290201A123J", "henkilötunnus has an invalid date"),
        ("131052-001T", "henkilötunnus has an invalid individual number"),
        ("131052G308T", "henkilötunnus has an invalid century sign"),
        ("2077474-1", "Y-tunnus has an invalid check digit"),
        ("", "identity code is empty"),
        ("hello", "not a henkilötunnus or Y-tunnus"),
        ("040 123 4567", "not a henkilötunnus or Y-tunnus"),
        ("1" * 40, "identity code is longer than 32 characters"),
    ],
)
def test_invalid_identity_codes_say_why_without_the_code(text: str, reason: str) -> None:
    with pytest.raises(InvalidIdentityCode) as caught:
        parse_identity_code(text)
    assert caught.value.message == reason
    assert not text.strip() or text.strip() not in caught.value.message


def test_hash_is_hmac_of_the_canonical_code() -> None:
    digest = identity_hash("131052-308T", KEY)
    assert len(digest) == 64
    assert int(digest, 16) >= 0
    assert "131052" not in digest


def test_hash_is_keyed() -> None:
    assert identity_hash("131052-308T", KEY) != identity_hash("131052-308T", OTHER_KEY)


def test_same_code_in_any_spelling_hashes_alike() -> None:
    expected = (IdentityKind.HENKILOTUNNUS, identity_hash("131052-308T", KEY))
    for spelling in ("131052-308T", "131052-308t", "  131052-308T ", "131052 -308T"):
        assert hash_identity_code(spelling, KEY) == expected
    ytunnus = hash_identity_code("2077474-0", KEY)
    assert hash_identity_code("20774740", KEY) == ytunnus
    assert ytunnus[0] is IdentityKind.YTUNNUS


def test_different_codes_hash_differently() -> None:
    assert hash_identity_code("131052-308T", KEY) != hash_identity_code("010594Y9032", KEY)


def test_empty_key_is_refused() -> None:
    with pytest.raises(ConfigError):
        identity_hash("131052-308T", "")
