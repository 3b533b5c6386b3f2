"""Identifiers of people and companies: phone numbers, henkilötunnus, Y-tunnus.

Phone numbers are kept in E.164 form (``+358401234567``) so that the number a
telephony system hands over and the number the customer system exported meet
in one spelling. Identity codes (henkilötunnus, Y-tunnus) are validated with
python-stdnum and then kept only as a keyed hash (HMAC-SHA-256 with the
installation's identity-hash key): staff can search by a code, but the
catalogue never holds one in clear.

Errors raised here never carry the number or code they are about: those are
personal data, and error messages end up in logs and on terminals.
"""

from __future__ import annotations

import hashlib
import hmac
import re

import phonenumbers
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat, ValidationError
from stdnum.fi import hetu, ytunnus

from recarchive.catalogue.models import IdentityKind
from recarchive.errors import ConfigError, RecArchiveError

#: Longer input is refused before parsing: no real spelling of a number is that long.
MAX_PHONE_TEXT = 64
MAX_IDENTITY_TEXT = 32

_WHITESPACE = re.compile(r"\s+")
#: DDMMYY, century sign, individual number, check character (shape only).
_HETU_SHAPE = re.compile(r"^\d{6}[-+A-Z]\d{3}[0-9A-Z]$")
#: NNNNNNN-C, with or without the dash; an old one has six digits before the check digit.
_YTUNNUS_SHAPE = re.compile(r"^\d{6,7}-?\d$")
#: Digits only, perhaps with spaces or dashes: a candidate for a missing leading "+".
_BARE_DIGITS = re.compile(r"^[1-9][\d\s-]{6,}$")
#: Century signs of a henkilötunnus: 1800s, 1900s (incl. those of 2023), 2000s.
_CENTURY_SIGNS = frozenset("+-YXWVUABCDEF")


class IdentifierError(RecArchiveError):
    """The identifier is not valid."""


class InvalidPhoneNumber(IdentifierError):
    """The phone number is not valid."""


class InvalidIdentityCode(IdentifierError):
    """The identity code is not a valid henkilötunnus or Y-tunnus."""


class UnknownRegion(ConfigError):
    """The region is not a country code known to the phone number library."""


# --- phone numbers ----------------------------------------------------------


def check_region(region: str) -> None:
    """Raise :class:`UnknownRegion` unless ``region`` is a country code phonenumbers knows."""
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise UnknownRegion(f"region {region!r} is not a known two-letter country code")


def _parse_valid(text: str, region: str) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def normalise_phone(text: str, *, region: str = "FI") -> str:
    """Return ``text`` as an E.164 number (``+358401234567``).

    Accepts the spellings people and telephony systems use: national
    (``040 123 4567``, ``(09) 123 4567``), international with ``+`` or the
    ``00`` prefix, and a country code without the ``+`` (``46701234567``)
    when that is what makes it a valid number. A number is taken as national
    to ``region`` unless it says otherwise. An extension (``ext 5``) is
    dropped: caller ids never carry one.

    Raises :class:`InvalidPhoneNumber` for empty text, text that is not a
    number, and numbers that cannot exist; the message never contains the
    number. Raises :class:`UnknownRegion` for a region the library does not know.
    """
    check_region(region)
    stripped = text.strip()
    if not stripped:
        raise InvalidPhoneNumber("phone number is empty")
    if len(stripped) > MAX_PHONE_TEXT:
        raise InvalidPhoneNumber(f"phone number is longer than {MAX_PHONE_TEXT} characters")
    number = _parse_valid(stripped, region)
    if number is None and _BARE_DIGITS.match(stripped):
        number = _parse_valid("+" + stripped, region)
    if number is None:
        raise InvalidPhoneNumber(f"phone number is not a valid number for region {region}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def try_normalise_phone(text: str | None, region: str = "FI") -> str | None:
    """Like :func:`normalise_phone`, but None for anything that is not a valid number.

    Meant for caller ids from telephony systems, which hand over real numbers
    next to ``anonymous``, ``Restricted``, ``unknown`` or nothing at all.
    """
    if text is None:
        return None
    try:
        return normalise_phone(text, region=region)
    except InvalidPhoneNumber:
        return None


# --- identity codes ---------------------------------------------------------


def _hetu_failure(code: str, exc: ValidationError) -> str:
    if isinstance(exc, InvalidChecksum):
        return "henkilötunnus has an invalid check character"
    if isinstance(exc, InvalidComponent):
        individual = int(code[7:10])
        if individual < 2:
            return "henkilötunnus has an invalid individual number"
        return "henkilötunnus has an invalid date"
    if isinstance(exc, InvalidFormat) and code[6] not in _CENTURY_SIGNS:
        return "henkilötunnus has an invalid century sign"
    return "henkilötunnus has an invalid check character"


def parse_identity_code(text: str) -> tuple[IdentityKind, str]:
    """Validate a henkilötunnus or Y-tunnus and return its kind and canonical form.

    Whitespace anywhere is ignored and letters are upper-cased, so
    ``131052-308t`` and ``131052-308T`` are the same code. The canonical form
    of a henkilötunnus is its 11 characters (``131052-308T``), century signs
    of 2023 (``Y X W V U``, ``B C D E F``) included; temporary codes
    (individual number 900-999) are accepted, since the customer system may
    hold them. The canonical form of a Y-tunnus is its eight digits without
    the dash (``20774740``); an old six-digit one gains its leading zero.

    Raises :class:`InvalidIdentityCode` with the reason (never the code).
    """
    code = _WHITESPACE.sub("", text).upper()
    if not code:
        raise InvalidIdentityCode("identity code is empty")
    if len(code) > MAX_IDENTITY_TEXT:
        raise InvalidIdentityCode(f"identity code is longer than {MAX_IDENTITY_TEXT} characters")
    if _HETU_SHAPE.match(code):
        try:
            return IdentityKind.HENKILOTUNNUS, hetu.validate(code, allow_temporary=True)
        except ValidationError as exc:
            raise InvalidIdentityCode(_hetu_failure(code, exc)) from None
    if _YTUNNUS_SHAPE.match(code):
        digits = code.replace("-", "").zfill(8)
        try:
            return IdentityKind.YTUNNUS, ytunnus.validate(digits)
        except InvalidChecksum:
            raise InvalidIdentityCode("Y-tunnus has an invalid check digit") from None
        except ValidationError:
            raise InvalidIdentityCode("not a valid Y-tunnus") from None
    raise InvalidIdentityCode("not a henkilötunnus or Y-tunnus")


def identity_hash(code_compact: str, key: str) -> str:
    """HMAC-SHA-256 (hex) of a canonical identity code under the identity-hash key.

    ``code_compact`` must come from :func:`parse_identity_code`; use
    :func:`hash_identity_code` for text as typed.
    """
    if not key:
        raise ConfigError("the identity-hash key is empty")
    digest = hmac.new(key.encode("utf-8"), code_compact.encode("utf-8"), hashlib.sha256)
    return digest.hexdigest()


def phone_hash(e164: str, key: str) -> str:
    """HMAC-SHA-256 (hex) of an E.164 number under the identity-hash key.

    The customer directory keeps phone numbers only in this form: it answers
    "which customers have this number" without holding the number itself.
    """
    if not key:
        raise ConfigError("the identity-hash key is empty")
    return hmac.new(key.encode("utf-8"), f"phone:{e164}".encode(), hashlib.sha256).hexdigest()


def number_ref(e164: str, key: str) -> str:
    """``number:`` and the keyed hash of an E.164 number: how requests and restrictions name
    an unlinked caller without keeping their number."""
    digest = hmac.new(key.encode(), f"number:{e164}".encode(), hashlib.sha256).hexdigest()
    return f"number:{digest}"


def hash_identity_code(text: str, key: str) -> tuple[IdentityKind, str]:
    """Validate an identity code as typed and return its kind and keyed hash."""
    kind, code = parse_identity_code(text)
    return kind, identity_hash(code, key)
