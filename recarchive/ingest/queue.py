"""The ingest work queue: recordings discovered at a source, claimed by workers.

Claiming is one atomic ``UPDATE ... WHERE id = (SELECT ... LIMIT 1)``: on
PostgreSQL the inner select takes the row with ``FOR UPDATE SKIP LOCKED`` so
that any number of workers on any number of machines never claim the same
item; SQLite serialises writers, so the same statement is safe there too. A
claim is a lease: a worker that dies leaves its item to be taken over when
the lease ends.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from recarchive.catalogue.database import utcnow
from recarchive.catalogue.intake import (
    FORGOTTEN_PREFIX,
    QuarantineEntry,
    SourceBookmark,
    WorkItem,
    WorkState,
    forgotten_call,
    forgotten_ref,
)
from recarchive.catalogue.models import Recording
from recarchive.ingest.interfaces import Discovery, Problem

_IN_CHUNK = 500


class Enqueued(enum.StrEnum):
    NEW = "new"
    #: Already queued or being worked on.
    QUEUED = "queued"
    #: Already archived: a duplicate delivery, or a source not yet acknowledged.
    ARCHIVED = "archived"
    QUARANTINED = "quarantined"


@dataclasses.dataclass(frozen=True)
class EnqueueOutcome:
    discovery: Discovery
    outcome: Enqueued


def _states(
    session: Session, source: str, refs: Collection[str], forget_key: str
) -> dict[str, WorkState]:
    """The state of each of ``refs`` that has a work item, forgotten ones included.

    A work item whose call was deleted keeps only a keyed digest of its
    reference (:func:`~recarchive.catalogue.intake.forgotten_ref`): a
    delivery of the same recording is still known as archived.
    """
    by_lookup = {ref: ref for ref in refs}
    by_lookup.update({forgotten_ref(forget_key, source, ref): ref for ref in refs})
    rows = session.execute(
        select(WorkItem.source_ref, WorkItem.state).where(
            WorkItem.source == source, WorkItem.source_ref.in_(list(by_lookup))
        )
    ).all()
    return {by_lookup[stored]: WorkState(state) for stored, state in rows}


def enqueue(
    session: Session, source: str, discoveries: Sequence[Discovery], *, forget_key: str
) -> list[EnqueueOutcome]:
    """Queue what is not queued yet; report what each discovery was.

    Safe against other processes queueing the same recordings at the same
    time (``INSERT ... ON CONFLICT DO NOTHING``). A recording delivered twice
    in one batch is queued once; one archived and since deleted is not
    queued again (``forget_key``: see :func:`_states`).
    """
    outcomes: list[EnqueueOutcome] = []
    for start in range(0, len(discoveries), _IN_CHUNK):
        chunk = discoveries[start : start + _IN_CHUNK]
        existing = _states(session, source, {d.source_ref for d in chunk}, forget_key)
        rows = []
        for discovery in chunk:
            state = existing.get(discovery.source_ref)
            if state is None:
                existing[discovery.source_ref] = WorkState.PENDING
                rows.append(_new_row(source, discovery))
                outcomes.append(EnqueueOutcome(discovery, Enqueued.NEW))
            else:
                outcomes.append(EnqueueOutcome(discovery, _STATE_OUTCOME[state]))
        if rows:
            _insert_ignoring_conflicts(session, rows)
    return outcomes


_STATE_OUTCOME = {
    WorkState.PENDING: Enqueued.QUEUED,
    WorkState.CLAIMED: Enqueued.QUEUED,
    WorkState.DONE: Enqueued.ARCHIVED,
    WorkState.QUARANTINED: Enqueued.QUARANTINED,
}


def _new_row(source: str, discovery: Discovery) -> dict[str, object]:
    now = utcnow()
    return {
        "id": uuid.uuid4(),
        "source": source,
        "source_ref": discovery.source_ref,
        "state": WorkState.PENDING,
        "payload": discovery.to_payload(),
        "attempts": 0,
        "duplicates": 0,
        "discovered_at": now,
        "updated_at": now,
    }


def _insert_ignoring_conflicts(session: Session, rows: list[dict[str, object]]) -> None:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(WorkItem).on_conflict_do_nothing(index_elements=["source", "source_ref"])
    session.execute(statement, rows)


def known_states(
    sessions: sessionmaker[Session], source: str, refs: Collection[str], *, forget_key: str
) -> dict[str, str]:
    """The state of each of ``refs`` that has a work item (missing ones are unknown)."""
    found: dict[str, str] = {}
    ordered = list(refs)
    with sessions() as session:
        for start in range(0, len(ordered), _IN_CHUNK):
            chunk = ordered[start : start + _IN_CHUNK]
            states = _states(session, source, chunk, forget_key)
            found.update({ref: state.value for ref, state in states.items()})
    return found


def call_archived(session: Session, source: str, call_id: str, forget_key: str) -> bool:
    """Whether the call's recording is archived, or was archived and since deleted."""
    found = session.scalar(
        select(Recording.id).where(Recording.source == source, Recording.call_id == call_id)
    )
    if found is not None:
        return True
    digest = forgotten_call(forget_key, source, call_id)
    forgotten = session.scalar(
        select(WorkItem.id)
        .where(
            WorkItem.source == source,
            WorkItem.source_ref.startswith(FORGOTTEN_PREFIX),
            WorkItem.payload["call"].as_string() == digest,
        )
        .limit(1)
    )
    return forgotten is not None


def find_item(session: Session, source: str, source_ref: str, forget_key: str) -> WorkItem:
    """The work item of ``source_ref``, also when its call was deleted (see :func:`_states`)."""
    refs = [source_ref, forgotten_ref(forget_key, source, source_ref)]
    return session.scalars(
        select(WorkItem).where(WorkItem.source == source, WorkItem.source_ref.in_(refs))
    ).one()


def count_duplicate(session: Session, source: str, source_ref: str) -> None:
    """Count one more delivery of a recording that is already queued or archived."""
    session.execute(
        update(WorkItem)
        .where(WorkItem.source == source, WorkItem.source_ref == source_ref)
        .values(duplicates=WorkItem.duplicates + 1)
    )


def claim(
    session: Session,
    worker: str,
    *,
    now: dt.datetime,
    lease_s: int,
    sources: Iterable[str] | None = None,
) -> WorkItem | None:
    """Claim the oldest item that is pending (and due) or whose lease has run out.

    The caller commits the session right away, so the claim is visible to
    other workers before the (long) work starts.
    """
    due = or_(
        and_(
            WorkItem.state == WorkState.PENDING,
            or_(WorkItem.lease_until.is_(None), WorkItem.lease_until <= now),
        ),
        and_(WorkItem.state == WorkState.CLAIMED, WorkItem.lease_until <= now),
    )
    candidate = select(WorkItem.id).where(due)
    if sources is not None:
        candidate = candidate.where(WorkItem.source.in_(list(sources)))
    candidate = (
        candidate.order_by(WorkItem.discovered_at).limit(1).with_for_update(skip_locked=True)
    )
    statement = (
        update(WorkItem)
        .where(WorkItem.id == candidate.scalar_subquery(), due)
        .values(
            state=WorkState.CLAIMED,
            claimed_by=worker,
            lease_until=now + dt.timedelta(seconds=lease_s),
            attempts=WorkItem.attempts + 1,
            updated_at=now,
        )
        .returning(WorkItem)
        .execution_options(synchronize_session=False)
    )
    return session.scalars(statement).one_or_none()


def release_dead_claims(session: Session, host: str, is_alive: Callable[[int], bool]) -> int:
    """Put back items claimed by worker processes on ``host`` that no longer run.

    Workers are named ``host:pid``; a worker killed mid-recording would
    otherwise hold its item until the lease ends. Returns how many were
    released. Items of other hosts wait for their lease.
    """
    claimed = session.execute(
        select(WorkItem.id, WorkItem.claimed_by).where(
            WorkItem.state == WorkState.CLAIMED, WorkItem.claimed_by.startswith(f"{host}:")
        )
    ).all()
    dead = [
        item_id
        for item_id, worker in claimed
        if worker
        and worker.rpartition(":")[2].isdigit()
        and not is_alive(int(worker.rpartition(":")[2]))
    ]
    if dead:
        session.execute(
            update(WorkItem)
            .where(WorkItem.id.in_(dead), WorkItem.state == WorkState.CLAIMED)
            .values(state=WorkState.PENDING, lease_until=None, claimed_by=None)
            .execution_options(synchronize_session=False)
        )
    return len(dead)


def complete(item: WorkItem, recording_id: uuid.UUID) -> None:
    item.state = WorkState.DONE
    item.recording_id = recording_id
    item.lease_until = None
    item.last_error = None


def defer(item: WorkItem, *, until: dt.datetime, note: str) -> None:
    """Put the item back for later without counting an attempt (e.g. still being written)."""
    item.state = WorkState.PENDING
    item.lease_until = until
    item.attempts = max(0, item.attempts - 1)
    item.last_error = note


def release_for_retry(item: WorkItem, *, now: dt.datetime, error: str) -> None:
    """Put the item back after a failure that was not the recording's fault, with backoff."""
    backoff = min(3600, 30 * 2 ** max(0, item.attempts - 1))
    item.state = WorkState.PENDING
    item.lease_until = now + dt.timedelta(seconds=backoff)
    item.last_error = error


def quarantine(
    session: Session, item: WorkItem, *, reason: str, detail: str, kept_at: str | None
) -> QuarantineEntry:
    """Take the item out of the queue with a specific reason; the original stays where it is."""
    item.state = WorkState.QUARANTINED
    item.lease_until = None
    item.last_error = f"{reason}: {detail}"
    entry = QuarantineEntry(
        work_item_id=item.id,
        source=item.source,
        source_ref=item.source_ref,
        reason=reason,
        detail=detail,
        kept_at=kept_at,
    )
    session.add(entry)
    return entry


def record_problems(
    session: Session, source: str, problems: Sequence[Problem], forget_key: str
) -> list[str]:
    """Quarantine the ``problems`` found at ``source``; the reasons of the new entries.

    An answered call without recording (``cdr_without_recording``) whose
    recording is archived after all, under another name, is no problem.
    """
    reasons = []
    for problem in problems:
        call_id = problem.source_ref.removeprefix("call:")
        if problem.reason == "cdr_without_recording" and call_archived(
            session, source, call_id, forget_key
        ):
            continue
        if record_problem(session, source, problem):
            reasons.append(problem.reason)
    return reasons


def record_problem(session: Session, source: str, problem: Problem) -> bool:
    """Quarantine a problem found at the source once; True when it is new.

    A problem that is still open (not resolved or retried) is not recorded
    again when a later pass finds it again.
    """
    open_entry = session.scalar(
        select(QuarantineEntry.id).where(
            QuarantineEntry.source == source,
            QuarantineEntry.source_ref == problem.source_ref,
            QuarantineEntry.reason == problem.reason,
            QuarantineEntry.resolved_at.is_(None),
        )
    )
    if open_entry is not None:
        return False
    session.add(
        QuarantineEntry(
            source=source,
            source_ref=problem.source_ref,
            reason=problem.reason,
            detail=problem.detail,
            kept_at=problem.kept_at,
        )
    )
    return True


def load_bookmark(sessions: sessionmaker[Session], source: str) -> dict[str, Any] | None:
    """The bookmark committed for ``source``, or None before its first."""
    with sessions() as session:
        row = session.get(SourceBookmark, source)
        return dict(row.value) if row is not None else None


def save_bookmark(session: Session, source: str, value: Mapping[str, Any]) -> None:
    """Set ``source``'s bookmark in ``session``'s transaction (the pass's work commits with it)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(SourceBookmark).values(source=source, value=dict(value), updated_at=utcnow())
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["source"],
            set_={"value": statement.excluded.value, "updated_at": statement.excluded.updated_at},
        )
    )
