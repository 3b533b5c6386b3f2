"""Catalogue tables: recordings, their reason codes, and the customer directory.

Personal data (caller numbers, customer names, the link between a recording
and a customer) lives here and nowhere else: object keys, tags and metadata
in the object store carry none of it. Identity codes are kept only as a keyed
hash (HMAC-SHA-256 with the installation's identity-hash key).
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql import false

from recarchive.catalogue.database import Base, UTCDateTime, utcnow
from recarchive.catalogue.types import enum_column, uuid_key


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    INTERNAL = "internal"
    UNKNOWN = "unknown"


class CustomerMatch(enum.StrEnum):
    """How the caller was linked to the customer directory."""

    MATCHED = "matched"
    UNKNOWN = "unknown"
    AMBIGUOUS = "ambiguous"
    MANUAL = "manual"


class RecordingStatus(enum.StrEnum):
    ACTIVE = "active"
    #: Object deletion under way; the row becomes a tombstone once the object is gone.
    DELETING = "deleting"


class ReasonSource(enum.StrEnum):
    RULE = "rule"
    STAFF = "staff"


class IdentityKind(enum.StrEnum):
    HENKILOTUNNUS = "henkilotunnus"
    YTUNNUS = "ytunnus"


class Installation(Base):
    """The installation a catalogue belongs to: one row, with a random id made by migration 0005.

    A process records the id when it opens the catalogue and stops serving
    and acknowledging when it changes (:mod:`recarchive.catalogue.guard`);
    ``/healthz`` writes ``heartbeat_at`` to prove the catalogue takes writes.
    """

    __tablename__ = "installation"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False, default=1)
    installation_id: Mapped[uuid.UUID] = mapped_column(Uuid())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Customer(Base):
    """One entry of the customer directory, imported from the customer system."""

    __tablename__ = "customers"

    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    identity_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    identity_kind: Mapped[IdentityKind | None] = enum_column(IdentityKind, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    phones: Mapped[list[CustomerPhone]] = relationship(
        back_populates="customer", cascade="all, delete-orphan"
    )


class CustomerPhone(Base):
    __tablename__ = "customer_phones"

    customer_id: Mapped[str] = mapped_column(
        ForeignKey("customers.customer_id", ondelete="CASCADE"), primary_key=True
    )
    #: Keyed hash of the number in E.164 form (:func:`~recarchive.catalogue.identity.phone_hash`):
    #: the directory never holds a number in clear.
    phone_hash: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)

    customer: Mapped[Customer] = relationship(back_populates="phones")


class Recording(Base):
    """One archived call recording: what it is, whose it is, where it is, until when."""

    __tablename__ = "recordings"
    __table_args__ = (
        UniqueConstraint("source", "source_ref"),
        Index("ix_recordings_customer_started", "customer_id", "started_at"),
        Index("ix_recordings_retain_until_status", "retain_until", "status"),
    )

    id: Mapped[uuid.UUID] = uuid_key()
    #: Name of the configured source the recording came from, and its reference there.
    source: Mapped[str] = mapped_column(String(64))
    source_ref: Mapped[str] = mapped_column(String(512))
    call_id: Mapped[str | None] = mapped_column(String(128), index=True)
    #: The call this recording is a part of (the CDR's ``linkedid``, a contact's
    #: ``InitialContactId``): the parts of a transferred call share it. None: unknown.
    linked_call_id: Mapped[str | None] = mapped_column(String(128), index=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    #: Duration decoded from the audio itself, never taken from a header.
    duration_ms: Mapped[int] = mapped_column(Integer)
    direction: Mapped[Direction] = enum_column(Direction, default=Direction.UNKNOWN)
    caller_number: Mapped[str | None] = mapped_column(String(32), index=True)
    called_number: Mapped[str | None] = mapped_column(String(32), index=True)
    agent: Mapped[str | None] = mapped_column(String(128), index=True)
    queue: Mapped[str | None] = mapped_column(String(128), index=True)
    customer_id: Mapped[str | None] = mapped_column(String(64))
    customer_match: Mapped[CustomerMatch] = enum_column(
        CustomerMatch, default=CustomerMatch.UNKNOWN
    )
    object_key: Mapped[str] = mapped_column(String(1024), unique=True)
    #: Container format as stored (``wav``, ``ogg``, ``mp3``...), codec and layout.
    format: Mapped[str] = mapped_column(String(16))
    codec: Mapped[str] = mapped_column(String(32))
    channels: Mapped[int] = mapped_column(SmallInteger)
    sample_rate: Mapped[int] = mapped_column(Integer)
    #: Size and SHA-256 of the audio (the plaintext, when the object is encrypted).
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    #: The object is encrypted under the data key in ``recording_keys`` (False: plaintext,
    #: as every recording stored before encryption at rest).
    encrypted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: What the catalogue says about the call came from the recording's file name alone
    #: (no CDR row yet): a CDR row that arrives later may still enrich it, once.
    facts_from_name: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: SHA-256 of the caller's and the agent's leg as the source delivered them, when the
    #: call came as MixMonitor's split legs (merged into this stereo recording) or as a
    #: lone leg (archived alone: the other is None); None for an ordinary recording.
    caller_leg_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    agent_leg_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    retention_class: Mapped[str] = mapped_column(String(32), default="standard")
    retain_until: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    #: The retention rule that decided ``retain_until`` (``default`` or a rule's name).
    retention_rule: Mapped[str] = mapped_column(String(64), default="default")
    status: Mapped[RecordingStatus] = enum_column(RecordingStatus, default=RecordingStatus.ACTIVE)
    #: The claim of a ``deleting`` recording (``retention/claims.py``): the run deleting
    #: it (None: left unsettled, for the next run), since when, the tombstone rule and
    #: data-subject request it is deleted for. All None while ``active``.
    deleting_by: Mapped[str | None] = mapped_column(String(64))
    deleting_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    deleting_rule: Mapped[str | None] = mapped_column(String(64))
    deleting_request_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    reasons: Mapped[list[RecordingReason]] = relationship(
        back_populates="recording", cascade="all, delete-orphan", order_by="RecordingReason.code"
    )
    candidates: Mapped[list[RecordingCandidate]] = relationship(
        back_populates="recording", cascade="all, delete-orphan"
    )

    @property
    def reason_codes(self) -> list[str]:
        return [reason.code for reason in self.reasons]


class RecordingReason(Base):
    """A reason code on a recording, assigned by a rule at ingest or by staff."""

    __tablename__ = "recording_reasons"

    recording_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("recordings.id", ondelete="CASCADE"), primary_key=True
    )
    code: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    assigned_by: Mapped[ReasonSource] = enum_column(ReasonSource, default=ReasonSource.RULE)
    assigned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    recording: Mapped[Recording] = relationship(back_populates="reasons")


class RecordingCandidate(Base):
    """A customer a recording may belong to, when the caller's number is ambiguous."""

    __tablename__ = "recording_candidates"

    recording_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("recordings.id", ondelete="CASCADE"), primary_key=True
    )
    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)

    recording: Mapped[Recording] = relationship(back_populates="candidates")


class RecordingKey(Base):
    """The data key of an encrypted recording, stored only wrapped by a key-encryption key.

    ``provider``, ``kek_id`` and ``wrapped_key`` are a
    :class:`~recarchive.crypto.interfaces.WrappedKey`; ``header`` is the
    object's encryption header (public), so that a range read fetches only
    its chunks. The row is deleted in the transaction that writes the
    recording's tombstone (``retention/rules.py: bury``): from then on no copy
    of the object can be decrypted.
    """

    __tablename__ = "recording_keys"

    recording_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("recordings.id", ondelete="CASCADE"), primary_key=True
    )
    provider: Mapped[str] = mapped_column(String(32))
    kek_id: Mapped[str] = mapped_column(String(255), index=True)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    header: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
