"""Privacy tables: data-subject requests and the restrictions they put in place."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, Uuid
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


class RestrictionKind(enum.StrEnum):
    #: Kept, served to nobody except for the stated purpose.
    RESTRICTION = "restriction"
    #: Excluded from training use; still available for disputes.
    OBJECTION = "objection"


class ProcessingRestriction(Base):
    """A restriction or a training objection, on a customer, a caller's number or a recording."""

    __tablename__ = "processing_restrictions"

    id: Mapped[uuid.UUID] = uuid_key()
    kind: Mapped[RestrictionKind] = enum_column(RestrictionKind)
    customer_id: Mapped[str | None] = mapped_column(String(64), index=True)
    recording_id: Mapped[uuid.UUID | None] = mapped_column(Uuid(), index=True)
    #: E.164 number of a caller no customer is linked to: covers their calls, later ones too.
    #: Kept in clear only while a recording holds the same number (it is matched against
    #: recordings in SQL); the keyed ``number_ref`` stays and brings it back when a call
    #: from the number is archived again (``retention/rules.py: forget_numbers``).
    number: Mapped[str | None] = mapped_column(String(32), index=True)
    #: ``number:`` + keyed hash of the number (:func:`~recarchive.catalogue.identity.number_ref`).
    number_ref: Mapped[str | None] = mapped_column(String(80), index=True)
    allowed_purpose: Mapped[str | None] = mapped_column(String(32))
    case_ref: Mapped[str | None] = mapped_column(String(128))
    request_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid(), ForeignKey("subject_requests.id", ondelete="SET NULL")
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(128))
    lifted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    lifted_by: Mapped[str | None] = mapped_column(String(128))
