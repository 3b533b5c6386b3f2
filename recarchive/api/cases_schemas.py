"""Request and response bodies of ``/api/v1/cases``, as they appear in ``/openapi.json``."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field

from recarchive.api.schemas import RequestBody, SearchIn


class CaseIn(RequestBody):
    reference: str = Field(min_length=1, max_length=128, description="Unique; staff quote it.")
    kind: Literal["billing", "contract", "complaint", "other"]
    customer_id: str | None = Field(
        default=None, max_length=64, description="Must be in the customer directory."
    )
    document_ref: str | None = Field(
        default=None, max_length=128, description="The invoice or contract disputed."
    )
    handler: str | None = Field(
        default=None,
        max_length=128,
        description="A dispute handler or privacy officer (default: the caller).",
    )


class CaseLinkIn(RequestBody):
    """Recordings by id, or every recording a search finds (at most 500): one of the two."""

    recording_ids: list[uuid.UUID] = Field(default_factory=list, max_length=1000)
    search: SearchIn | None = Field(
        default=None, description="The filters of POST /recordings/search; every part linked."
    )


class CaseNoteIn(RequestBody):
    text: str = Field(min_length=1, max_length=20000)


class CaseCloseIn(RequestBody):
    reason: str = Field(min_length=1, max_length=2000)


class CaseSummaryOut(BaseModel):
    id: uuid.UUID
    reference: str
    kind: str
    status: str
    customer_id: str | None
    document_ref: str | None
    handler: str
    opened_at: dt.datetime
    closed_at: dt.datetime | None
    recordings: int = Field(description="How many recordings the case links.")


class CaseListOut(BaseModel):
    cases: list[CaseSummaryOut]


class CaseHoldOut(BaseModel):
    id: uuid.UUID
    placed_at: dt.datetime
    released_at: dt.datetime | None
    recordings: int


class CaseRecordingOut(BaseModel):
    """A linked recording; once erased only ``id``, ``status`` (deleted) and the link's fields."""

    id: uuid.UUID
    started_at: dt.datetime | None
    duration_ms: int | None
    direction: str | None
    agent: str | None
    queue: str | None
    caller_number: str | None
    status: str
    added_by: str
    added_at: dt.datetime
    other_holds: int | None = Field(description="Holds other than the case's that cover it.")


class CaseNoteOut(BaseModel):
    id: uuid.UUID
    author: str
    at: dt.datetime
    text: str


class CaseExportOut(BaseModel):
    id: uuid.UUID
    made_by: str
    at: dt.datetime
    recordings: int
    manifest_sha256: str
    timestamped_at: dt.datetime | None


class CaseDetailOut(BaseModel):
    id: uuid.UUID
    reference: str
    kind: str
    status: str
    customer_id: str | None
    document_ref: str | None
    handler: str
    opened_at: dt.datetime
    closed_at: dt.datetime | None
    opened_by: str
    closed_by: str | None
    close_reason: str | None
    delete_after: dt.datetime | None = Field(description="When the closed case's record goes.")
    hold: CaseHoldOut | None
    recordings: list[CaseRecordingOut]
    notes: list[CaseNoteOut]
    exports: list[CaseExportOut]


class CustodyEntryOut(BaseModel):
    seq: int
    at: dt.datetime
    actor: str
    actor_role: str | None
    action: str
    recording_id: uuid.UUID | None
    purpose: str | None
    case_ref: str | None
    details: dict[str, Any]
    hash: str = Field(description="The entry's hash in the audit chain.")


class CustodyOut(BaseModel):
    entries: list[CustodyEntryOut]
