"""The table of restrictions and training objections, and when it keeps a number in clear.

The privacy domain places and lifts them (``privacy/restrictions.py``) and
decides what they cover (``privacy/visibility.py``); the table lives here,
below the domains, because ingest and retention must keep it right in their
own transactions: a restriction on an unlinked caller's number keeps the
number in clear only while a recording holds it, so a deletion clears it
(:func:`forget_numbers`, called by retention) and the next call from the
number brings it back (:func:`recall_numbers`, called by ingest).

``request_id`` refers to ``subject_requests`` (``privacy/models.py``) by
table name only; ``catalogue/schema.py`` puts both tables in one schema.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Sequence

from sqlalchemy import ForeignKey, String, Uuid, exists, or_, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from recarchive.catalogue.database import Base, UTCDateTime, utcnow
from recarchive.catalogue.identity import number_ref
from recarchive.catalogue.models import Recording
from recarchive.catalogue.types import enum_column, uuid_key

__all__ = ["ProcessingRestriction", "RestrictionKind", "forget_numbers", "recall_numbers"]


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
    #: from the number is archived again (:func:`forget_numbers`, :func:`recall_numbers`).
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


def recall_numbers(session: Session, numbers: Sequence[str | None], hash_key: str) -> None:
    """A call from an unlinked number arrives: restrictions on it get their number back.

    They keep only the keyed ``number_ref`` while no recording holds the
    number (:func:`forget_numbers`); visibility matches numbers in SQL, so
    the number returns with the call that holds it. Ingest calls this in the
    transaction that catalogues the call (``ingest/cataloguing.py``).
    """
    for number in {n for n in numbers if n}:
        session.execute(
            update(ProcessingRestriction)
            .where(
                ProcessingRestriction.number.is_(None),
                ProcessingRestriction.number_ref == number_ref(number, hash_key),
            )
            .values(number=number)
            .execution_options(synchronize_session=False)
        )


def forget_numbers(session: Session) -> int:
    """Clear the number of restrictions whose number no live recording holds any more.

    A restriction or objection on an unlinked caller's number keeps the
    number in clear only while a recording holds it too (visibility matches
    them in SQL); after the last such call is deleted only its keyed
    ``number_ref`` remains, and ingest brings the number back with the next
    call from it (:func:`recall_numbers`). Call after deleting recordings,
    in the same transaction; returns how many restrictions were cleared.
    """
    held = exists().where(
        or_(
            Recording.caller_number == ProcessingRestriction.number,
            Recording.called_number == ProcessingRestriction.number,
        )
    )
    result = session.execute(
        update(ProcessingRestriction)
        .where(
            ProcessingRestriction.number.is_not(None),
            ProcessingRestriction.number_ref.is_not(None),
            ~held,
        )
        .values(number=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
