"""Privacy tables: data-subject requests.

The restrictions and objections they put in place are in
``catalogue/restrictions.py``: ingest and retention keep that table right too.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from recarchive.catalogue.database import Base, UTCDateTime, utcnow
from recarchive.catalogue.types import enum_column, uuid_key


class RequestKind(enum.StrEnum):
    ACCESS = "access"
    RECTIFICATION = "rectification"
    ERASURE = "erasure"
    RESTRICTION = "restriction"
    OBJECTION = "objection"


class RequestStatus(enum.StrEnum):
    RECEIVED = "received"
    #: Partly done; the rest waits (e.g. erasure of held recordings).
    PENDING = "pending"
    COMPLETED = "completed"
    REJECTED = "rejected"


class SubjectRequest(Base):
    """A data-subject request and what was done about it.

    ``subject_ref`` identifies the person without an identity code in clear:
    a customer id, or the keyed hash of the identity code.
    """

    __tablename__ = "subject_requests"

    id: Mapped[uuid.UUID] = uuid_key()
    kind: Mapped[RequestKind] = enum_column(RequestKind)
    subject_ref: Mapped[str] = mapped_column(String(256), index=True)
    customer_id: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[RequestStatus] = enum_column(RequestStatus, default=RequestStatus.RECEIVED)
    handled_by: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    note: Mapped[str | None] = mapped_column(Text)
