"""Intake tables: the work queue of recordings on their way in, and quarantine.

They belong to the catalogue (ingest fills them; retention and privacy scrub
them when a call is deleted), so that no domain reaches into another's models.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import uuid
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from recarchive.catalogue.database import Base, UTCDateTime, utcnow
from recarchive.catalogue.types import enum_column, uuid_key


class WorkState(enum.StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    DONE = "done"
    QUARANTINED = "quarantined"


class WorkItem(Base):
    """One recording discovered at a source, on its way into the archive.

    ``(source, source_ref)`` is the idempotency key: a recording delivered
    twice is one work item. Workers claim pending items with
    ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL.
    """

    __tablename__ = "work_items"
    __table_args__ = (
        UniqueConstraint("source", "source_ref"),
        Index("ix_work_items_state_discovered", "state", "discovered_at"),
    )

    id: Mapped[uuid.UUID] = uuid_key()
    source: Mapped[str] = mapped_column(String(64))
    source_ref: Mapped[str] = mapped_column(String(512))
    state: Mapped[WorkState] = enum_column(WorkState, default=WorkState.PENDING)
    #: What the source knows about the call (CDR fields, contact record...).
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    recording_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    discovered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class QuarantineEntry(Base):
    """Input that could not be archived, with the specific reason; the original is kept."""

    __tablename__ = "quarantine_entries"

    id: Mapped[uuid.UUID] = uuid_key()
    work_item_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid(), ForeignKey("work_items.id", ondelete="SET NULL"), index=True
    )
    source: Mapped[str] = mapped_column(String(64))
    source_ref: Mapped[str] = mapped_column(String(512))
    #: Stable reason code (``zero_byte``, ``truncated_audio``, ``not_audio``...).
    reason: Mapped[str] = mapped_column(String(64), index=True)
    detail: Mapped[str] = mapped_column(Text)
    #: Where the original is kept (source path or quarantine object key).
    kept_at: Mapped[str | None] = mapped_column(String(1024))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    retried_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    resolution: Mapped[str | None] = mapped_column(String(32))


#: ``source_ref`` of a work item whose call was deleted: only a keyed digest remains.
FORGOTTEN_PREFIX = "forgotten:"


def _digest(key: str, *parts: str) -> str:
    message = "\x1f".join(parts).encode("utf-8")
    return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def forgotten_ref(key: str, source: str, source_ref: str) -> str:
    """The ``source_ref`` a work item keeps once its call is deleted.

    A keyed digest (the installation's identity-hash key) of the original
    reference, which may name the caller's number: the same delivery is still
    recognised as already archived, and nothing in the row tells whose call
    it was.
    """
    return FORGOTTEN_PREFIX + _digest(key, "ref", source, source_ref)


def forgotten_call(key: str, source: str, call_id: str) -> str:
    """The keyed digest of a deleted call's id, kept so a late CDR row is not reported missing."""
    return _digest(key, "call", source, call_id)


class SourceBookmark(Base):
    """How far a source has read what it reads incrementally (a CDR table).

    Written in the transaction that queues what that reading found, so a
    restarted ingest resumes where the committed work ends.
    """

    __tablename__ = "source_bookmarks"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: The source's own position (for a CDR table: the newest ``calldate`` read).
    value: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
