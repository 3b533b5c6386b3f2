"""Retention tables: holds that suspend deletion, and tombstones of deletions.

A tombstone proves a deletion without keeping personal data: which recording
and object, its checksum, until when it was to be kept, when it was deleted
and under which rule or by whom.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import BigInteger, Boolean, ForeignKey, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from recarchive.catalogue.database import Base, UTCDateTime, utcnow
from recarchive.catalogue.types import uuid_key


class Hold(Base):
    """A dispute or legal hold: the recordings it covers are not deleted while it is open.

    A hold names recordings explicitly (``recordings``) or a customer
    (``customer_id``), in which case it covers every recording of that
    customer, including ones ingested while the hold is open.
    """

    __tablename__ = "holds"

    id: Mapped[uuid.UUID] = uuid_key()
    case_ref: Mapped[str] = mapped_column(String(128), index=True)
    reason: Mapped[str] = mapped_column(Text)
    customer_id: Mapped[str | None] = mapped_column(String(64), index=True)
    placed_by: Mapped[str] = mapped_column(String(128))
    placed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Optional date after which the hold no longer applies.
    until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    released_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    released_by: Mapped[str | None] = mapped_column(String(128))
    release_reason: Mapped[str | None] = mapped_column(Text)
    #: The dispute case this hold belongs to (released by closing the case, not by hand).
    case_id: Mapped[uuid.UUID | None] = mapped_column(Uuid(), index=True)

    recordings: Mapped[list[HoldRecording]] = relationship(
        back_populates="hold", cascade="all, delete-orphan"
    )


class HoldRecording(Base):
    __tablename__ = "hold_recordings"

    hold_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("holds.id", ondelete="CASCADE"), primary_key=True
    )
    #: No foreign key: a hold outlives nothing, but its record must outlive a recording
    #: erased after release.
    recording_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, index=True)

    hold: Mapped[Hold] = relationship(back_populates="recordings")


class Tombstone(Base):
    """What was deleted, when, why: kept after the recording's row is gone."""

    __tablename__ = "tombstones"

    recording_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    object_key: Mapped[str] = mapped_column(String(1024), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    retain_until: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    #: The rule that deleted it: ``retention:<rule>``, ``erasure``, ``bucket-lifecycle``...
    rule: Mapped[str] = mapped_column(String(64))
    #: Staff member (for an erasure) or ``system`` (nightly expiry).
    deleted_by: Mapped[str] = mapped_column(String(128), default="system")
    #: Data-subject request that caused the deletion, if any.
    request_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    #: When the recording's data key was destroyed (None: it was stored in plaintext).
    key_destroyed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class RecordingCheck(Base):
    """The last time a recording's bytes were read whole and compared with its SHA-256.

    Written by ``recarchive verify`` and by every full read the player serves;
    the player shows it. A failed check stays until a later check passes.
    """

    __tablename__ = "recording_checks"

    recording_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("recordings.id", ondelete="CASCADE"), primary_key=True
    )
    checked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: True: the bytes read matched the catalogue's SHA-256 and size.
    ok: Mapped[bool] = mapped_column(Boolean)
    #: What read them: ``verify`` (the integrity check) or ``playback`` (a full read served).
    via: Mapped[str] = mapped_column(String(16))
    #: The last time the check passed (kept through a later failure).
    last_ok_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
