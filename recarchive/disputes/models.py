"""Dispute cases: the calls a billing or contract dispute turns on, their notes and exports.

A case is personal data about its customer (``customer_id``, notes): it is
kept while open and for ``disputes.keep_closed_years`` after closing, then
deleted by the nightly job, leaving a :class:`CaseTombstone` without personal
data. Links to recordings carry no foreign key, as a hold's do: the case's
record outlives a recording erased after the case closed.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import ForeignKey, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from recarchive.catalogue.database import Base, UTCDateTime, utcnow
from recarchive.catalogue.types import enum_column, uuid_key


class CaseKind(enum.StrEnum):
    BILLING = "billing"
    CONTRACT = "contract"
    COMPLAINT = "complaint"
    OTHER = "other"


class CaseStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Case(Base):
    """One dispute case: while open, its recordings are held (one hold per case, ``hold_id``)."""

    __tablename__ = "cases"

    id: Mapped[uuid.UUID] = uuid_key()
    #: The case's reference, unique (the one staff quote; audit entries carry it as case_ref).
    reference: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[CaseKind] = enum_column(CaseKind)
    customer_id: Mapped[str | None] = mapped_column(String(64), index=True)
    #: The invoice or contract the dispute is about.
    document_ref: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[CaseStatus] = enum_column(CaseStatus, default=CaseStatus.OPEN, index=True)
    #: The staff member handling it (a user name).
    handler: Mapped[str] = mapped_column(String(128))
    opened_by: Mapped[str] = mapped_column(String(128))
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The hold that keeps the case's recordings while it is open (released on closing).
    hold_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(128))
    close_reason: Mapped[str | None] = mapped_column(Text)
    #: When the nightly job deletes the closed case's record (closed_at + keep_closed_years).
    delete_after: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)

    recordings: Mapped[list[CaseRecording]] = relationship(
        back_populates="case", cascade="all, delete-orphan"
    )
    notes: Mapped[list[CaseNote]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="CaseNote.at"
    )
    exports: Mapped[list[CaseExport]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="CaseExport.at"
    )


class CaseRecording(Base):
    __tablename__ = "case_recordings"

    case_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    recording_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, index=True)
    added_by: Mapped[str] = mapped_column(String(128))
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    case: Mapped[Case] = relationship(back_populates="recordings")


class CaseNote(Base):
    __tablename__ = "case_notes"

    id: Mapped[uuid.UUID] = uuid_key()
    case_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("cases.id", ondelete="CASCADE"), index=True
    )
    author: Mapped[str] = mapped_column(String(128))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    text: Mapped[str] = mapped_column(Text)

    case: Mapped[Case] = relationship(back_populates="notes")


class CaseExport(Base):
    """An evidence package made from the case: who made it, when, and what it proves."""

    __tablename__ = "case_exports"

    id: Mapped[uuid.UUID] = uuid_key()
    case_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("cases.id", ondelete="CASCADE"), index=True
    )
    made_by: Mapped[str] = mapped_column(String(128))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    recordings: Mapped[int] = mapped_column(Integer)
    #: SHA-256 of the package's manifest (what the signature and the timestamp cover).
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    #: When the TSA's timestamp says the manifest existed (None: no TSA configured).
    timestamped_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    case: Mapped[Case] = relationship(back_populates="exports")


class CaseTombstone(Base):
    """A deleted case: that it existed and when, without personal data."""

    __tablename__ = "case_tombstones"

    case_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    reference: Mapped[str] = mapped_column(String(128), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    recordings: Mapped[int] = mapped_column(Integer)
    deleted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
