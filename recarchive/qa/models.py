"""Sampling plans, their versions, and the samples drawn from them.

A plan is a name and a line of versions: each version holds the criteria
("N calls per agent per week or month", with filters) and never changes;
a change makes the next version. A sample is one draw of one plan version
for one period: its random seed, the criteria it was drawn with, and every
candidate (recording id and agent) with whether it was picked, so that the
draw can be recomputed and checked (:func:`recarchive.qa.draw.draw`).

A filter is a column of :class:`PlanVersion` and a key of a sample's
``criteria``: a later filter is one more of each, false for every version
before it (``not_evaluated``: calls without an evaluation; a sample drawn
before it has no such key, which reads as false).

Links to recordings carry no foreign key, as a case's do: the record of a
draw outlives a recording deleted after it (withdrawn, reason ``deleted``).

A note on a call's timeline (:class:`Note`) is the opposite: personal data
about the agent, it never outlives its recording. Its foreign key deletes it
with the recording's row, in the same transaction (expiry, erasure,
reconciliation alike).

Scorecards: a form is a name and a line of versions (sections and questions,
:mod:`recarchive.qa.scorecards`), each never changed once written. An
evaluation scores one call against one form version; every change is a new
:class:`EvaluationVersion`, the earlier ones kept and marked superseded
(:mod:`recarchive.qa.evaluations`).
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    UniqueConstraint,
    Uuid,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from recarchive.catalogue.database import Base, UTCDateTime, utcnow
from recarchive.catalogue.types import enum_column, uuid_key


class PeriodKind(enum.StrEnum):
    WEEK = "week"
    MONTH = "month"


class NoteVisibility(enum.StrEnum):
    """Who sees a note: its author alone, or every QA trainer."""

    PRIVATE = "private"
    SHARED = "shared"


class WithdrawalReason(enum.StrEnum):
    """Why a picked call left its sample."""

    OBJECTED = "objected"
    RESTRICTED = "restricted"
    #: Deleted, being deleted, or past its retention.
    DELETED = "deleted"


class Plan(Base):
    """A sampling plan: a name and its versions (the newest is the one a run draws with)."""

    __tablename__ = "qa_plans"

    id: Mapped[uuid.UUID] = uuid_key()
    name: Mapped[str] = mapped_column(String(128), unique=True)
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    versions: Mapped[list[PlanVersion]] = relationship(
        back_populates="plan", cascade="all, delete-orphan", order_by="PlanVersion.version"
    )


class PlanVersion(Base):
    """One version of a plan's criteria; never changed once written."""

    __tablename__ = "qa_plan_versions"

    plan_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("qa_plans.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    calls_per_agent: Mapped[int] = mapped_column(Integer)
    period_kind: Mapped[PeriodKind] = enum_column(PeriodKind)
    #: Filters: empty lists and None mean "any".
    queues: Mapped[list[str]] = mapped_column(JSON, default=list)
    reason_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    direction: Mapped[str | None] = mapped_column(String(16))
    min_duration_s: Mapped[int | None] = mapped_column(Integer)
    max_duration_s: Mapped[int | None] = mapped_column(Integer)
    #: Only calls without any evaluation (any status, any form) at the draw.
    not_evaluated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    plan: Mapped[Plan] = relationship(back_populates="versions")

    def criteria(self) -> dict[str, Any]:
        """The version's criteria as a sample stores them (and verification reads them)."""
        return {
            "calls_per_agent": self.calls_per_agent,
            "period_kind": self.period_kind.value,
            "queues": list(self.queues),
            "reason_codes": list(self.reason_codes),
            "direction": self.direction,
            "min_duration_s": self.min_duration_s,
            "max_duration_s": self.max_duration_s,
            "not_evaluated": self.not_evaluated,
        }


class Sample(Base):
    """One draw of one plan version for one period: stored, so that a re-run returns it."""

    __tablename__ = "qa_samples"
    __table_args__ = (UniqueConstraint("plan_id", "plan_version", "period"),)

    id: Mapped[uuid.UUID] = uuid_key()
    plan_id: Mapped[uuid.UUID] = mapped_column(Uuid(), ForeignKey("qa_plans.id"), index=True)
    plan_version: Mapped[int] = mapped_column(Integer)
    #: The period as given (``2026-W49``, ``2026-11``) and its bounds, in UTC.
    period: Mapped[str] = mapped_column(String(16))
    period_start: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    period_end: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    #: The plan version's criteria at the draw (:meth:`PlanVersion.criteria`).
    criteria: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: The random seed of the draw (``secrets.token_hex``), drawn once for this period.
    seed: Mapped[str] = mapped_column(String(64))
    candidates: Mapped[int] = mapped_column(Integer)
    picked: Mapped[int] = mapped_column(Integer)
    drawn_by: Mapped[str] = mapped_column(String(128))
    drawn_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    calls: Mapped[list[SampleCall]] = relationship(
        back_populates="sample", cascade="all, delete-orphan"
    )


class SampleCall(Base):
    """A candidate of a draw: its agent, whether it was picked, and a withdrawal's note."""

    __tablename__ = "qa_sample_calls"

    sample_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("qa_samples.id", ondelete="CASCADE"), primary_key=True
    )
    recording_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, index=True)
    agent: Mapped[str] = mapped_column(String(128))
    picked: Mapped[bool] = mapped_column(Boolean, default=False)
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    withdrawn_reason: Mapped[WithdrawalReason | None] = enum_column(WithdrawalReason, nullable=True)

    sample: Mapped[Sample] = relationship(back_populates="calls")


class Note(Base):
    """A QA trainer's note at a moment of a call: deleted with the recording."""

    __tablename__ = "qa_notes"

    id: Mapped[uuid.UUID] = uuid_key()
    recording_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("recordings.id", ondelete="CASCADE"), index=True
    )
    #: The user name of the trainer who wrote it (only they may change it).
    author: Mapped[str] = mapped_column(String(128), index=True)
    #: Where in the call, in milliseconds from its start (0 to its duration).
    offset_ms: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(String(2000))
    visibility: Mapped[NoteVisibility] = enum_column(NoteVisibility)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Clip(Base):
    """A training clip: a stretch of one call, cut into its own object (:mod:`recarchive.qa.clips`).

    Its source is named without a foreign key: a kept clip outlives its call.
    ``customer_id`` is the source's customer when the clip was cut, so that a
    later objection or erasure still finds the clip when the call is gone.
    An encrypted clip keeps its own wrapped data key here (bound to the clip's
    id), as a recording keeps its in ``recording_keys``.
    """

    __tablename__ = "qa_clips"

    id: Mapped[uuid.UUID] = uuid_key()
    recording_id: Mapped[uuid.UUID] = mapped_column(Uuid(), index=True)
    customer_id: Mapped[str | None] = mapped_column(String(64), index=True)
    agent: Mapped[str | None] = mapped_column(String(128))
    start_ms: Mapped[int] = mapped_column(Integer)
    end_ms: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(1000))
    #: True: the clip holds the agent's channel alone (the caller's was removed when cut).
    agent_only: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The source's channel that held the agent (``right``), for an agent-only clip.
    agent_channel: Mapped[str | None] = mapped_column(String(8))
    object_key: Mapped[str] = mapped_column(String(1024), unique=True)
    format: Mapped[str] = mapped_column(String(16))
    channels: Mapped[int] = mapped_column(SmallInteger)
    duration_ms: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    encrypted: Mapped[bool] = mapped_column(Boolean, default=False)
    key_provider: Mapped[str | None] = mapped_column(String(32))
    kek_id: Mapped[str | None] = mapped_column(String(255))
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    header: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: The source's ``retain_until`` when the clip was cut (the clip goes with its source).
    retain_until: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    #: A decision to keep an agent-only clip beyond its source (None: not kept).
    kept_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    kept_reason: Mapped[str | None] = mapped_column(String(1000))
    kept_by: Mapped[str | None] = mapped_column(String(128))
    kept_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Form(Base):
    """A scorecard form: a name and its versions (new evaluations use the newest)."""

    __tablename__ = "qa_forms"

    id: Mapped[uuid.UUID] = uuid_key()
    name: Mapped[str] = mapped_column(String(128), unique=True)
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    versions: Mapped[list[FormVersion]] = relationship(
        back_populates="form", cascade="all, delete-orphan", order_by="FormVersion.version"
    )


class FormVersion(Base):
    """One version of a form: its sections and questions (validated JSON), never changed."""

    __tablename__ = "qa_form_versions"
    __table_args__ = (UniqueConstraint("form_id", "version"),)

    id: Mapped[uuid.UUID] = uuid_key()
    form_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("qa_forms.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    #: :class:`recarchive.qa.scorecards.FormDefinition` as JSON.
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    form: Mapped[Form] = relationship(back_populates="versions")


class EvaluationStatus(enum.StrEnum):
    """Where an evaluation stands (docs/qa.md, "Agents: reviewing your own evaluations").

    ``draft`` -> ``submitted`` -> ``acknowledged`` (the agent) or ``disputed``
    (the agent, once) -> ``dispute_answered`` (a QA trainer). A new submitted
    version makes an acknowledged or answered evaluation ``submitted`` again.
    """

    DRAFT = "draft"
    SUBMITTED = "submitted"
    ACKNOWLEDGED = "acknowledged"
    DISPUTED = "disputed"
    DISPUTE_ANSWERED = "dispute_answered"


class ResponseKind(enum.StrEnum):
    """What an :class:`EvaluationResponse` is."""

    ACKNOWLEDGE = "acknowledge"
    DISPUTE = "dispute"
    ANSWER = "answer"


class Evaluation(Base):
    """One call scored against one form version: the line of its versions.

    The recording is named without a foreign key: the evaluation (personal
    data about the agent) outlives the call and is kept for its own period
    (``qa.keep_evaluations_years``); the call's agent, queue and start are
    copied for reports.
    """

    __tablename__ = "qa_evaluations"

    id: Mapped[uuid.UUID] = uuid_key()
    recording_id: Mapped[uuid.UUID] = mapped_column(Uuid(), index=True)
    agent: Mapped[str | None] = mapped_column(String(128), index=True)
    queue: Mapped[str | None] = mapped_column(String(128))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    form_version_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("qa_form_versions.id"), index=True
    )
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[EvaluationStatus] = enum_column(EvaluationStatus)
    #: The current version's total (0..100), None when no question applied.
    score: Mapped[float | None] = mapped_column(Float)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    versions: Mapped[list[EvaluationVersion]] = relationship(
        back_populates="evaluation",
        cascade="all, delete-orphan",
        order_by="EvaluationVersion.version",
    )
    responses: Mapped[list[EvaluationResponse]] = relationship(
        back_populates="evaluation",
        cascade="all, delete-orphan",
        order_by="EvaluationResponse.at",
    )


class EvaluationVersion(Base):
    """One saved state of an evaluation: answers and the score computed from them.

    Never changed, but for ``superseded_at``/``superseded_by``, set when the
    next version is saved.
    """

    __tablename__ = "qa_evaluation_versions"

    evaluation_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("qa_evaluations.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    status: Mapped[EvaluationStatus] = enum_column(EvaluationStatus)
    #: Question id -> answer ("yes", "no", "na", a number, or text).
    answers: Mapped[dict[str, Any]] = mapped_column(JSON)
    score: Mapped[float | None] = mapped_column(Float)
    #: Section id -> score (0..100 or None), and the critical questions failed.
    sections: Mapped[dict[str, Any]] = mapped_column(JSON)
    critical_failed: Mapped[list[str]] = mapped_column(JSON, default=list)
    saved_by: Mapped[str] = mapped_column(String(128))
    saved_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    superseded_by: Mapped[str | None] = mapped_column(String(128))
    superseded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    evaluation: Mapped[Evaluation] = relationship(back_populates="versions")


class EvaluationNote(Base):
    """A timeline note that belongs to an evaluation (:mod:`recarchive.qa.evaluation_notes`).

    A copy of the note as it was attached: it stays with the evaluation
    (deleted with it, after ``qa.keep_evaluations_years``) when the call and
    its live notes are gone. ``note_id`` names the live note without a
    foreign key (it goes with the call).
    """

    __tablename__ = "qa_evaluation_notes"
    __table_args__ = (UniqueConstraint("evaluation_id", "note_id"),)

    id: Mapped[uuid.UUID] = uuid_key()
    evaluation_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("qa_evaluations.id", ondelete="CASCADE"), index=True
    )
    note_id: Mapped[uuid.UUID] = mapped_column(Uuid())
    author: Mapped[str] = mapped_column(String(128))
    offset_ms: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(String(2000))
    attached_by: Mapped[str] = mapped_column(String(128))
    attached_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class EvaluationResponse(Base):
    """The agent's acknowledgement or dispute of an evaluation, or a trainer's answer.

    Names the version it refers to; the comment (a dispute's, an answer's) is
    personal data about the agent, kept and deleted with the evaluation.
    """

    __tablename__ = "qa_evaluation_responses"

    id: Mapped[uuid.UUID] = uuid_key()
    evaluation_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("qa_evaluations.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[ResponseKind] = enum_column(ResponseKind)
    version: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(String(2000))
    by: Mapped[str] = mapped_column(String(128))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    evaluation: Mapped[Evaluation] = relationship(back_populates="responses")
