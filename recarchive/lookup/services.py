"""Looking recordings up for staff: search, metadata, and audio for a stated purpose.

Every call takes the :class:`~recarchive.access.services.Principal` it acts
for and the client address, checks the role against
:mod:`recarchive.access.policy` before touching the catalogue (so a refusal
never says whether a recording exists), applies what the role may see
(QA trainers never see a caller's identity, nor recordings that are
restricted or that the caller objected to training use of; an agent hears
only the calls the QA workspace says are theirs to review,
:mod:`recarchive.lookup.events`), and has one
audit entry committed (:class:`~recarchive.access.audit.AuditWriter`) before
it returns anything read.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import uuid
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import (
    BindParameter,
    Select,
    bindparam,
    select,
)
from sqlalchemy.orm import Session, selectinload

from recarchive import probes
from recarchive.access.audit import AuditEntry
from recarchive.access.models import Role
from recarchive.access.policy import (
    SEES_IDENTITY,
    Action,
    Forbidden,
    Purpose,
    check_purpose,
    require,
)
from recarchive.access.services import Principal
from recarchive.catalogue.database import UTCDateTime, transaction, utcnow
from recarchive.catalogue.models import (
    CustomerMatch,
    Recording,
    RecordingCandidate,
    RecordingReason,
    RecordingStatus,
)
from recarchive.catalogue.restrictions import RestrictionKind
from recarchive.errors import ObjectNotFound, RecArchiveError
from recarchive.lookup.events import SelfReviewAsked, self_review_allowed
from recarchive.lookup.filters import Cursor, SearchFilters, check_limit
from recarchive.lookup.parts import parts_by_call, parts_of
from recarchive.lookup.search_sql import search_statement
from recarchive.lookup.views import (
    AudioMissing,
    Gone,
    NotFound,
    RangeNotSatisfiable,
    RecordingView,
    SearchPage,
    TombstoneView,
    holds_for,
    integrity_of,
    role_view,
)
from recarchive.privacy.visibility import (
    check_restrictions,
    restriction_condition,
    restrictions_for,
    visible_condition,
)
from recarchive.retention.checks import Expected, FullReadCheck
from recarchive.retention.models import Tombstone
from recarchive.retention.rules import held_condition
from recarchive.runtime import Runtime
from recarchive.storage.interfaces import ByteRange, ObjectReader

# --- search -------------------------------------------------------------------


# The page's details are read by statements built once, with the page's ids in an
# expanding parameter: building them anew for each page (50 ids, four EXISTS) cost
# more than running them.
_PAGE_IDS: BindParameter[uuid.UUID] = bindparam("ids", expanding=True)
_NOW = bindparam("now", type_=UTCDateTime())


@functools.cache
def _flags_statement() -> Select[uuid.UUID, bool, bool, bool]:
    return select(
        Recording.id,
        held_condition(_NOW),
        restriction_condition([RestrictionKind.RESTRICTION]),
        restriction_condition([RestrictionKind.OBJECTION]),
    ).where(Recording.id.in_(_PAGE_IDS))


@functools.cache
def _reasons_statement() -> Select[uuid.UUID, str]:
    return (
        select(RecordingReason.recording_id, RecordingReason.code)
        .where(RecordingReason.recording_id.in_(_PAGE_IDS))
        .order_by(RecordingReason.code)
    )


@functools.cache
def _candidates_statement() -> Select[uuid.UUID, str]:
    return select(RecordingCandidate.recording_id, RecordingCandidate.customer_id).where(
        RecordingCandidate.recording_id.in_(_PAGE_IDS)
    )


def _page_details(
    session: Session, ids: list[uuid.UUID], now: dt.datetime, *, candidates: bool
) -> tuple[
    dict[uuid.UUID, tuple[bool, bool, bool]], dict[uuid.UUID, list[str]], dict[uuid.UUID, list[str]]
]:
    """For a page: (held, restricted, objected) flags, reason codes and candidates by id."""
    if not ids:
        return {}, {}, {}
    # Plain column reads, run on the session's connection: the ORM's result layer
    # would only hand the same tuples back, at a fifth of a search's CPU.
    connection = session.connection()
    flag_rows = connection.execute(_flags_statement(), {"ids": ids, "now": now})
    flags = {row[0]: (bool(row[1]), bool(row[2]), bool(row[3])) for row in flag_rows}
    reasons: dict[uuid.UUID, list[str]] = {}
    for recording_id, code in connection.execute(_reasons_statement(), {"ids": ids}):
        reasons.setdefault(recording_id, []).append(code)
    found: dict[uuid.UUID, list[str]] = {}
    if candidates:
        for recording_id, customer_id in connection.execute(_candidates_statement(), {"ids": ids}):
            found.setdefault(recording_id, []).append(customer_id)
    return flags, reasons, found


@probes.timed("service: search()")
def search(
    runtime: Runtime,
    principal: Principal,
    filters: SearchFilters,
    *,
    cursor: str | None = None,
    limit: int | None = None,
    client_addr: str | None = None,
    now: dt.datetime | None = None,
) -> SearchPage:
    """One page of recordings matching ``filters``, newest first unless asked otherwise.

    A call recorded in several parts (a transfer) is one item, its earliest
    matching part, unless ``filters.every_part``; each item lists the call's
    other parts the role may see (:mod:`recarchive.lookup.parts`).

    Raises :class:`Forbidden` when the role may not search, or may not
    search by customer identity; :class:`~recarchive.lookup.filters.FilterError`
    for a bad cursor or limit.
    """
    require(principal.role, Action.SEARCH)
    if filters.identifies_customer and principal.role not in SEES_IDENTITY:
        raise Forbidden(f"role {principal.role.value} may not search by customer identity")
    page_size = check_limit(limit)
    after = Cursor.decode(cursor) if cursor else None
    now = now or utcnow()
    statement, values = search_statement(filters, now, principal.role, after, page_size)
    with transaction(runtime.sessions) as session:
        rows = list(session.connection().execute(statement, values))  # columns: Core rows
        more = len(rows) > page_size
        rows = rows[:page_size]
        ambiguous = any(r.customer_match is CustomerMatch.AMBIGUOUS for r in rows)
        flags, reasons, candidates = _page_details(
            session,
            [r.id for r in rows],
            now,
            candidates=ambiguous and principal.role in SEES_IDENTITY,
        )
        calls = parts_by_call(session, (r.linked_call_id for r in rows), principal.role)
        items = []
        for r in rows:
            held, restricted, objected = flags.get(r.id, (False, False, False))
            items.append(
                role_view(
                    r,
                    principal.role,
                    reasons=reasons.get(r.id, []),
                    candidates=candidates.get(r.id, []),
                    held=held,
                    restricted=restricted,
                    objected=objected,
                    parts=parts_of(calls, r.id, r.linked_call_id),
                )
            )
    runtime.audit.record(
        AuditEntry(
            actor=principal.user_name,
            actor_role=principal.role.value,
            action="search",
            client_addr=client_addr,
            details={
                "filters": filters.used_fields(),
                "customer_id": filters.customer_id,
                "results": len(items),
                "page": cursor is not None,
            },
        )
    )
    next_cursor = Cursor(rows[-1].started_at, rows[-1].id).encode() if more and rows else None
    return SearchPage(items, next_cursor)


# --- one recording ------------------------------------------------------------


def _load(session: Session, recording_id: uuid.UUID, role: Role) -> Recording:
    """The recording if the role may know of it; :class:`Gone` or :class:`NotFound` otherwise."""
    recording = session.scalar(
        select(Recording)
        .where(Recording.id == recording_id, visible_condition(role))
        .options(selectinload(Recording.reasons), selectinload(Recording.candidates))
    )
    if recording is not None and recording.status is RecordingStatus.ACTIVE:
        return recording
    if recording is None and session.get(Recording, recording_id) is None:
        tombstone = session.get(Tombstone, recording_id)
        if tombstone is not None:
            raise Gone(
                TombstoneView(
                    tombstone.recording_id, tombstone.deleted_at, tombstone.rule, tombstone.sha256
                )
            )
    raise NotFound(f"no recording {recording_id}")


def get_recording(
    runtime: Runtime,
    principal: Principal,
    recording_id: uuid.UUID,
    *,
    client_addr: str | None = None,
    now: dt.datetime | None = None,
) -> RecordingView:
    """Metadata, holds and retention of one recording; the view is audited."""
    require(principal.role, Action.VIEW)
    now = now or utcnow()
    with transaction(runtime.sessions) as session:
        recording = _load(session, recording_id, principal.role)
        restrictions = restrictions_for(session, recording)
        holds = holds_for(session, recording, now)
        calls = parts_by_call(session, [recording.linked_call_id], principal.role)
        view = role_view(
            recording,
            principal.role,
            reasons=recording.reason_codes,
            candidates=[c.customer_id for c in recording.candidates],
            held=bool(holds),
            restricted=any(r.kind is RestrictionKind.RESTRICTION for r in restrictions),
            objected=any(r.kind is RestrictionKind.OBJECTION for r in restrictions),
            holds=holds,
            parts=parts_of(calls, recording.id, recording.linked_call_id),
        )
        view = dataclasses.replace(
            view, integrity=integrity_of(session, recording.id), shows_integrity=True
        )
    runtime.audit.record(
        AuditEntry(
            actor=principal.user_name,
            actor_role=principal.role.value,
            action="view",
            recording_id=recording_id,
            client_addr=client_addr,
        )
    )
    return view


@dataclasses.dataclass
class AudioAccess:
    """An opened recording: its catalogue facts and, for a byte range, the reader."""

    recording_id: uuid.UUID
    object_key: str
    format: str
    size_bytes: int
    sha256: str
    started_at: dt.datetime
    purpose: Purpose
    reader: ObjectReader | None = None
    range: tuple[int, int] | None = None
    #: A full read of the stored bytes: checked against the SHA-256 as it is served.
    check: FullReadCheck | None = None

    def chunks(self, chunk_size: int = 64 * 1024) -> Iterator[bytes]:
        """The bytes opened; a full read's last chunk only once they match the SHA-256
        (:class:`~recarchive.retention.checks.FullReadCheck`: a mismatch cuts the stream)."""
        if self.reader is None:
            return
        if self.check is not None:
            yield from self.check.chunks(self.reader, chunk_size)
            return
        try:
            yield from self.reader.iter_chunks(chunk_size)
        finally:
            self.reader.close()


@probes.timed("service: open_audio()")
def open_audio(
    runtime: Runtime,
    principal: Principal,
    recording_id: uuid.UUID,
    *,
    purpose: str | None,
    case_ref: str | None,
    download: bool = False,
    byte_range: ByteRange | None = None,
    suffix_length: int | None = None,
    output_format: str | None = None,
    client_addr: str | None = None,
    on_mismatch: Callable[[], None] | None = None,
) -> AudioAccess:
    """Check role, purpose and restrictions, audit the access, and open the audio.

    ``byte_range`` (or ``suffix_length`` for ``bytes=-N``) selects part of the
    stored object; it is resolved against the stored size (raising
    :class:`~recarchive.errors.InvalidRange`). Nothing is opened when the
    caller transcodes (``output_format``): the caller reads the whole object.
    Play and download are different audit actions.

    A full read (no range, or one covering the whole recording) is checked
    as it streams (:attr:`AudioAccess.check`); ``on_mismatch`` is called for
    each one that fails.
    """
    action = Action.DOWNLOAD if download else Action.PLAY
    require(principal.role, action)
    parsed = check_purpose(principal.role, purpose, case_ref)
    case = case_ref.strip() if case_ref and case_ref.strip() else None
    with transaction(runtime.sessions) as session:
        if parsed is Purpose.SELF_REVIEW:
            asked = SelfReviewAsked(session, principal.user_id, recording_id, utcnow())
            if not self_review_allowed(asked):  # before _load: not even a tombstone shows
                raise NotFound(f"no recording {recording_id}")
        recording = _load(session, recording_id, principal.role)
        check_restrictions(restrictions_for(session, recording), parsed, case)
        access = AudioAccess(
            recording.id,
            recording.object_key,
            recording.format,
            recording.size_bytes,
            recording.sha256,
            recording.started_at,
            parsed,
        )
        if output_format is None:
            if suffix_length is not None:
                if suffix_length <= 0:
                    raise _invalid_range(recording.size_bytes)
                byte_range = ByteRange(max(0, recording.size_bytes - suffix_length))
            if byte_range is not None:
                try:
                    access.range = byte_range.resolve(recording.size_bytes)
                except RecArchiveError:
                    raise _invalid_range(recording.size_bytes) from None
        details: dict[str, Any] = {}
        if access.range is not None:
            details["range"] = f"{access.range[0]}-{access.range[1]}"
        if output_format is not None:
            details["format"] = output_format
    runtime.audit.record(
        AuditEntry(
            actor=principal.user_name,
            actor_role=principal.role.value,
            action=action.value,
            recording_id=recording_id,
            purpose=parsed.value,
            case_ref=case,
            client_addr=client_addr,
            details=details,
        )
    )
    if output_format is None:
        _open_stored(runtime, access, on_mismatch)
    return access


def _open_stored(
    runtime: Runtime, access: AudioAccess, on_mismatch: Callable[[], None] | None
) -> None:
    """Open the stored audio: a range of it, or all of it under a :class:`FullReadCheck`."""
    start, end = access.range if access.range else (0, access.size_bytes - 1)
    try:
        if (start, end) == (0, access.size_bytes - 1):
            expected = Expected(access.recording_id, access.object_key, access.sha256, end + 1)
            access.check = FullReadCheck(runtime, expected, on_mismatch=on_mismatch)
            access.reader = access.check.open()
        else:
            access.reader = runtime.store.get(access.object_key, byte_range=ByteRange(start, end))
    except ObjectNotFound as exc:
        raise AudioMissing(f"the audio of recording {access.recording_id} is missing") from exc
    # A client that goes away before the body is read never starts chunks(): close
    # the reader when the access is dropped, not at some later garbage collection.
    weakref.finalize(access, access.reader.close)


def _invalid_range(size: int) -> RangeNotSatisfiable:
    return RangeNotSatisfiable(size)
