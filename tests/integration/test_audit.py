"""The audit log's hash chain detects an edited, removed or reordered entry."""

from __future__ import annotations

import concurrent.futures
import threading
import uuid

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from recarchive.access.audit import append_event, verify_chain
from recarchive.access.models import AuditEvent
from recarchive.catalogue.database import transaction


@pytest.fixture
def chain(sessions: sessionmaker[Session]) -> list[int]:
    """A fresh chain of five entries (the module's catalogue is emptied first)."""
    with transaction(sessions) as session:
        session.execute(delete(AuditEvent))
    seqs = []
    for number in range(5):
        with transaction(sessions) as session:
            event = append_event(
                session,
                actor="maija",
                actor_role="dispute_handler",
                action="recording.play",
                recording_id=uuid.uuid4(),
                purpose="dispute",
                case_ref=f"D-{number}",
                details={"range": "bytes=0-"},
            )
            seqs.append(event.seq)
    return seqs


def test_an_untouched_chain_is_intact(sessions: sessionmaker[Session], chain: list[int]) -> None:
    report = verify_chain(sessions)
    assert report.intact
    assert report.entries == 5


def test_an_edited_entry_breaks_the_chain(
    sessions: sessionmaker[Session], chain: list[int]
) -> None:
    with transaction(sessions) as session:
        session.execute(update(AuditEvent).where(AuditEvent.seq == chain[2]).values(actor="eve"))
    report = verify_chain(sessions)
    assert (report.broken_at, report.problem) == (chain[2], "entry content does not match its hash")


def test_a_removed_entry_breaks_the_chain(
    sessions: sessionmaker[Session], chain: list[int]
) -> None:
    with transaction(sessions) as session:
        session.execute(delete(AuditEvent).where(AuditEvent.seq == chain[1]))
    report = verify_chain(sessions)
    assert (report.broken_at, report.problem) == (chain[2], "link to the previous entry is broken")


def test_reordered_entries_break_the_chain(
    sessions: sessionmaker[Session], chain: list[int]
) -> None:
    with transaction(sessions) as session:
        first = session.get_one(AuditEvent, chain[0])
        second = session.get_one(AuditEvent, chain[1])
        columns = ("case_ref", "recording_id", "prev_hash", "hash")
        swapped = {name: getattr(second, name) for name in columns}
        for name in columns:
            setattr(second, name, "x" * 64 if name == "hash" else getattr(first, name))
        session.flush()
        for name in columns:
            setattr(first, name, swapped[name])
    assert not verify_chain(sessions).intact


def test_appends_continue_the_chain(sessions: sessionmaker[Session], chain: list[int]) -> None:
    with sessions() as session:
        last = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
    assert last is not None
    with transaction(sessions) as session:
        event = append_event(session, actor="system", action="nightly.run")
    assert event.prev_hash == last.hash
    assert verify_chain(sessions).entries == 6


def test_concurrent_appenders_never_fork_the_chain(
    sessions: sessionmaker[Session], chain: list[int]
) -> None:
    """Many threads appending at once (the API's thread pool) still make one chain."""
    barrier = threading.Barrier(8)

    def append(number: int) -> None:
        barrier.wait()
        for _ in range(10):
            with transaction(sessions) as session:
                session.scalar(select(AuditEvent.seq).limit(1))  # a read first, as a search does
                append_event(session, actor=f"user-{number}", action="search")

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(append, range(8)))
    report = verify_chain(sessions)
    assert report.intact, report.problem
    assert report.entries == len(chain) + 80
