"""Request and response bodies of the API, as they appear in ``/openapi.json``."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from recarchive.lookup.filters import PARTS_MEANING, STARTED_FROM_MEANING, STARTED_TO_MEANING

#: Control characters other than tab and line breaks: never in any request field.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _strings(item)]
    return []


#: How far from UTC a naive time may be read (the installation's zone: at most a day).
_ZONE_MARGIN = dt.timedelta(days=1)


def _convertible_to_utc(value: dt.datetime) -> dt.datetime:
    """An aware time as UTC; a naive one within a day of the calendar's ends refused.

    Python's datetimes end at years 1 and 9999: ``9999-12-31T23:59:59-14:00``
    or ``0001-01-01T00:00:00+14:00`` cannot be converted to UTC, and a naive
    time that close to either end may not be in the installation's zone.
    """
    if value.tzinfo is None:
        if not dt.datetime.min + _ZONE_MARGIN <= value <= dt.datetime.max - _ZONE_MARGIN:
            raise ValueError("out of the range of dates (0001-01-02 to 9999-12-30)")
        return value
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError("out of the range of dates: cannot be converted to UTC") from None


#: A date and time in a request body: aware ones arrive as UTC, every one convertible.
#: Naive ones are in the installation's zone (``general.timezone``); the route converts.
ApiDateTime = Annotated[dt.datetime, AfterValidator(_convertible_to_utc)]


class RequestBody(BaseModel):
    """Base of every request body: unknown fields and control characters are refused."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        if any(_CONTROL.search(text) for text in _strings(value)):
            raise ValueError("control characters are not allowed")
        return value


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None
    error_id: str | None = Field(
        default=None, description="On a 500: the id of the server log line that explains it."
    )
    tombstone: dict[str, Any] | None = None


class ErrorOut(BaseModel):
    error: ErrorDetail


#: The error answers every authenticated endpoint can give, for the OpenAPI document.
COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "No valid token."},
    403: {"model": ErrorOut, "description": "The role may not do this."},
    414: {"model": ErrorOut, "description": "The query string is longer than api.max_query_bytes."},
    422: {"model": ErrorOut, "description": "A parameter is not valid; `field` names it."},
}


class AudioOut(BaseModel):
    format: str
    codec: str
    channels: int
    sample_rate: int
    size_bytes: int
    sha256: str


class RetentionOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    class_: str = Field(alias="class")
    rule: str
    retain_until: dt.datetime


class CustomerOut(BaseModel):
    customer_id: str | None
    match: str
    candidates: list[str]
    caller_number: str | None
    called_number: str | None


class HoldRefOut(BaseModel):
    id: uuid.UUID
    case_ref: str
    placed_at: dt.datetime
    until: dt.datetime | None
    on_customer: bool


class PartOut(BaseModel):
    id: uuid.UUID
    started_at: dt.datetime
    duration_s: float
    agent: str | None
    queue: str | None


class RecordingOut(BaseModel):
    id: uuid.UUID
    started_at: dt.datetime
    duration_s: float
    direction: str
    agent: str | None
    queue: str | None
    reasons: list[str]
    audio: AudioOut
    retention: RetentionOut
    held: bool
    restricted: bool
    objected: bool
    customer: CustomerOut | None = Field(
        default=None, description="null for roles that do not see who called."
    )
    holds: list[HoldRefOut] | None = None
    linked_call_id: str | None = Field(
        default=None,
        description="The call this recording is a part of (shared by a transfer's parts).",
    )
    parts: list[PartOut] = Field(
        default_factory=list,
        description="The call's other recordings the caller may see, oldest first.",
    )


class IntegrityOut(BaseModel):
    last_checked_at: dt.datetime = Field(
        description="When the stored bytes were last read whole and compared with `sha256`."
    )
    ok: bool = Field(description="They matched the catalogue's SHA-256 and size.")
    via: Literal["verify", "playback"] = Field(
        description="`verify`: `recarchive verify`; `playback`: a full read served."
    )
    last_ok_at: dt.datetime | None = Field(
        description="The last check that passed (kept through a later failure)."
    )


class RecordingDetailOut(RecordingOut):
    integrity: IntegrityOut | None = Field(
        description="The last integrity check of the audio; null when never checked."
    )


class SearchOut(BaseModel):
    items: list[RecordingOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page.")


class SearchIn(RequestBody):
    """The same filters as ``GET /recordings``, in a body (keeps identity codes out of URLs)."""

    customer_id: str | None = Field(default=None, max_length=128)
    number: str | None = Field(default=None, max_length=64)
    identity_code: str | None = Field(default=None, max_length=64)
    from_: str | None = Field(
        default=None, alias="from", max_length=64, description=STARTED_FROM_MEANING
    )
    to: str | None = Field(default=None, max_length=64, description=STARTED_TO_MEANING)
    reason: list[str] = Field(default_factory=list, max_length=20)
    agent: str | None = Field(default=None, max_length=128)
    queue: str | None = Field(default=None, max_length=128)
    direction: str | None = Field(default=None, max_length=16)
    min_duration: float | None = Field(default=None, ge=0, le=604800)
    max_duration: float | None = Field(default=None, ge=0, le=604800)
    held: bool | None = None
    order: str = Field(default="newest", pattern="^(newest|oldest)$")
    cursor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=50, ge=1, le=200)
    parts: str = Field(default="first", pattern="^(first|all)$", description=PARTS_MEANING)


class ReasonsIn(RequestBody):
    set: list[str] | None = Field(default=None, max_length=20, description="Replace all codes.")
    add: list[str] = Field(default_factory=list, max_length=20)
    remove: list[str] = Field(default_factory=list, max_length=20)


class ReasonsOut(BaseModel):
    id: uuid.UUID
    before: list[str]
    after: list[str]
    changed: bool


class HoldIn(RequestBody):
    case_ref: str = Field(min_length=1, max_length=128)
    reason: str = Field(min_length=1, max_length=2000)
    recording_ids: list[uuid.UUID] = Field(default_factory=list, max_length=1000)
    customer_id: str | None = Field(default=None, min_length=1, max_length=64)
    until: ApiDateTime | None = Field(
        default=None,
        description="Until when the hold lasts; without an offset, in the installation's zone.",
    )


class HoldReleaseIn(RequestBody):
    reason: str = Field(min_length=1, max_length=2000)


class HoldOut(BaseModel):
    id: uuid.UUID
    case_ref: str
    reason: str
    customer_id: str | None
    placed_by: str
    placed_at: dt.datetime
    until: dt.datetime | None
    released_at: dt.datetime | None
    released_by: str | None
    recordings: int
    #: The dispute case the hold belongs to (released by closing the case), or null.
    case_id: uuid.UUID | None = None


class HoldListOut(BaseModel):
    items: list[HoldOut]


class AuditEntryOut(BaseModel):
    seq: int
    at: dt.datetime
    actor: str
    actor_role: str | None
    action: str
    recording_id: uuid.UUID | None
    purpose: str | None
    case_ref: str | None
    client_addr: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPageOut(BaseModel):
    items: list[AuditEntryOut]
    next_cursor: str | None


class MeOut(BaseModel):
    user: str
    role: str
    purposes: list[str]
    sees_identity: bool


class HealthOut(BaseModel):
    status: str
    catalogue: str
    audit: str
    store: str


class UserIn(RequestBody):
    name: str = Field(min_length=2, max_length=64, description="2 to 64 of a-z 0-9 . _ -")
    role: str = Field(
        description="qa_trainer, dispute_handler, privacy_officer, auditor, admin, agent"
    )
    token_days: int = Field(default=90, ge=1, le=3650, description="Lifetime of the first token.")
    description: str | None = Field(default=None, max_length=256)


class TokenIn(RequestBody):
    days: int = Field(default=90, ge=1, le=3650)
    description: str | None = Field(default=None, max_length=256)


class IssuedTokenOut(BaseModel):
    """A token just issued: ``token`` is its only copy, shown this once."""

    user: str
    token_id: uuid.UUID
    token: str
    expires_at: dt.datetime


class UserOut(BaseModel):
    name: str
    role: str
    created_at: dt.datetime
    disabled_at: dt.datetime | None
    active_tokens: int
    last_used_at: dt.datetime | None
    agent_ids: list[str] = Field(
        default_factory=list, description="An agent's telephony agent identifiers."
    )


class AgentIdIn(RequestBody):
    agent_id: str = Field(
        min_length=1, max_length=128, description="The agent's id in the telephony system."
    )


class AgentIdsOut(BaseModel):
    user: str
    agent_ids: list[str]


class UserListOut(BaseModel):
    items: list[UserOut]


class TokenOut(BaseModel):
    token_id: uuid.UUID
    description: str | None
    created_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None
    in_force: bool


class TokenListOut(BaseModel):
    items: list[TokenOut]


class UserDisabledOut(BaseModel):
    user: str
    revoked_tokens: int


class TokenRevokedOut(BaseModel):
    user: str
    token_id: uuid.UUID
