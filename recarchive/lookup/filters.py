"""Search filters and the keyset cursor, parsed and checked before any query runs.

Parsing turns every kind of caller input (a Finnish or E.164 number, an
identity code, ISO dates) into the catalogue's own form, or raises
:class:`FilterError` naming the field, so both the API (422) and the shell
say exactly what is wrong. Messages never repeat a number or identity code.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import json
import uuid

from recarchive.catalogue.identity import (
    IdentifierError,
    hash_identity_code,
    normalise_phone,
)
from recarchive.catalogue.models import Direction
from recarchive.errors import InvalidInputError

#: What "from" and "to" mean, said the same way by the API, the CLI and the web player:
#: "from" includes its moment, "to" excludes it (a date means its midnight).
STARTED_FROM_MEANING = "Calls that started at or after (inclusive): ISO date or time."
STARTED_TO_MEANING = (
    "Calls that started before (exclusive): ISO date or time; 2026-04-01 ends with March."
)
#: What "parts" means: the recordings of one call (a transfer's parts) are found once.
PARTS_MEANING = (
    "first: one item per call, its earliest matching recording (the others in its parts); "
    "all: every matching recording."
)

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_REASONS = 20
_TEXT_MAX = 128


class FilterError(InvalidInputError):
    """a search filter is not valid"""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.detail = message


@dataclasses.dataclass(frozen=True)
class SearchFilters:
    """A parsed search; ``None`` or empty means "any"."""

    customer_id: str | None = None
    #: E.164 number matched against the caller and the called number.
    number: str | None = None
    #: Keyed hash of an identity code, matched through the customer directory.
    identity_hash: str | None = None
    started_from: dt.datetime | None = None
    started_to: dt.datetime | None = None
    reasons: tuple[str, ...] = ()
    agent: str | None = None
    queue: str | None = None
    direction: Direction | None = None
    min_duration_s: float | None = None
    max_duration_s: float | None = None
    held: bool | None = None
    oldest_first: bool = False
    #: Every matching recording of a call, not only its earliest (``parts=all``).
    every_part: bool = False

    @property
    def identifies_customer(self) -> bool:
        """Whether the search names a person (not allowed to roles that do not see identity)."""
        return bool(self.customer_id or self.number or self.identity_hash)

    def used_fields(self) -> list[str]:
        """Names of the filters given, for the audit log (values are personal data)."""
        return sorted(
            field.name
            for field in dataclasses.fields(self)
            if field.name not in ("oldest_first", "every_part")
            and getattr(self, field.name) not in (None, ())
        )


def _text(field: str, value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if len(value) > _TEXT_MAX or any(ord(c) < 32 for c in value):
        raise FilterError(field, f"must be at most {_TEXT_MAX} printable characters")
    return value


def parse_time(field: str, value: str | dt.datetime | None, tz: dt.tzinfo) -> dt.datetime | None:
    """An ISO date or time as aware UTC (naive ones in ``tz``); :class:`FilterError` otherwise."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            parsed = (
                dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
                if len(value.strip()) > 10
                else dt.datetime.combine(dt.date.fromisoformat(value.strip()), dt.time())
            )
        except ValueError:
            raise FilterError(
                field, "not an ISO date or time (e.g. 2026-05-04 or 2026-05-04T09:30:00+03:00)"
            ) from None
    else:
        parsed = value
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError:  # 0001-01-01 east of UTC, 9999-12-31 west of it
        raise FilterError(field, "out of the range of dates") from None


def parse_filters(
    *,
    customer_id: str | None = None,
    number: str | None = None,
    identity_code: str | None = None,
    identity_key: str | None = None,
    started_from: str | dt.datetime | None = None,
    started_to: str | dt.datetime | None = None,
    reasons: list[str] | tuple[str, ...] = (),
    agent: str | None = None,
    queue: str | None = None,
    direction: str | None = None,
    min_duration_s: float | None = None,
    max_duration_s: float | None = None,
    held: bool | None = None,
    oldest_first: bool = False,
    region: str = "FI",
    timezone: dt.tzinfo = dt.UTC,
    taxonomy: tuple[str, ...] | None = None,
) -> SearchFilters:
    """Parse raw filter values; naive times are in ``timezone`` (the installation's)."""
    e164 = None
    if (raw_number := _text("number", number)) is not None:
        try:
            e164 = normalise_phone(raw_number, region=region)
        except IdentifierError:
            raise FilterError("number", "not a valid phone number") from None
    hashed = None
    if (raw_code := _text("identity_code", identity_code)) is not None:
        if not identity_key:
            raise FilterError("identity_code", "the identity-hash key is not configured")
        try:
            hashed = hash_identity_code(raw_code, identity_key)[1]
        except IdentifierError:
            raise FilterError("identity_code", "not a valid henkilötunnus or Y-tunnus") from None
    start = parse_time("from", started_from, timezone)
    end = parse_time("to", started_to, timezone)
    if start and end and end <= start:
        raise FilterError("to", "must be after 'from'")
    codes = tuple(dict.fromkeys(code.strip() for code in reasons if code and code.strip()))
    if len(codes) > MAX_REASONS:
        raise FilterError("reason", f"at most {MAX_REASONS} reason codes")
    if taxonomy is not None:
        unknown = [code for code in codes if code not in taxonomy]
        if unknown:
            raise FilterError(
                "reason", f"unknown reason code {unknown[0]!r} (known: {', '.join(taxonomy)})"
            )
    parsed_direction = None
    if direction:
        try:
            parsed_direction = Direction(direction)
        except ValueError:
            known = ", ".join(d.value for d in Direction)
            raise FilterError("direction", f"must be one of {known}") from None
    for name, seconds in (("min_duration", min_duration_s), ("max_duration", max_duration_s)):
        if seconds is not None and not 0 <= seconds <= 86_400 * 7:
            raise FilterError(name, "must be between 0 and 604800 seconds")
    if (
        min_duration_s is not None
        and max_duration_s is not None
        and max_duration_s < min_duration_s
    ):
        raise FilterError("max_duration", "must not be less than min_duration")
    return SearchFilters(
        customer_id=_text("customer_id", customer_id),
        number=e164,
        identity_hash=hashed,
        started_from=start,
        started_to=end,
        reasons=codes,
        agent=_text("agent", agent),
        queue=_text("queue", queue),
        direction=parsed_direction,
        min_duration_s=min_duration_s,
        max_duration_s=max_duration_s,
        held=held,
        oldest_first=oldest_first,
    )


@dataclasses.dataclass(frozen=True)
class Cursor:
    """Where the next page starts: after this (started_at, id) in the search's order."""

    started_at: dt.datetime
    recording_id: uuid.UUID

    def encode(self) -> str:
        raw = json.dumps([self.started_at.isoformat(), self.recording_id.hex])
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            if len(text) > 200:
                raise ValueError("too long")
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            started, rid = json.loads(raw)
            if not isinstance(started, str) or not isinstance(rid, str):
                raise TypeError("cursor fields are not strings")
            at = dt.datetime.fromisoformat(started)
            if at.tzinfo is None:
                raise ValueError("naive")
            return cls(at.astimezone(dt.UTC), uuid.UUID(hex=rid))
        except (ValueError, TypeError, OverflowError, binascii.Error):
            raise FilterError("cursor", "not a cursor this server issued") from None


def check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise FilterError("limit", f"must be between 1 and {MAX_LIMIT}")
    return limit
