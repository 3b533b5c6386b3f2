"""The audit log's hash chain detects an edited, removed or reordered entry."""

from __future__ import annotations

import concurrent.futures
import threading
import time
import uuid

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from recarchive.access import audit
from recarchive.access.audit import AuditEntry, AuditWriter, append_event, verify_chain
from recarchive.access.models import AuditEvent
from recarchive.catalogue.database import transaction
from recarchive.errors import CatalogueUnavailable


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


# --- group commit of the entries of reads (AuditWriter) -------------------------


def _entry(number: int) -> AuditEntry:
    return AuditEntry(
        actor=f"user-{number % 7}",
        actor_role="dispute_handler",
        action="play",
        recording_id=uuid.uuid4(),
        purpose="dispute",
        case_ref=f"D-{number}",
        details={"range": "0-65535"},
    )


def test_many_readers_share_commits_and_the_chain_stays_whole(
    sessions: sessionmaker[Session], chain: list[int]
) -> None:
    """50 threads recording at once, while changes append in their own transactions
    and a second writer (another process) appends too: one chain, every entry once."""
    writer, other = AuditWriter(sessions), AuditWriter(sessions)
    barrier = threading.Barrier(50)

    def read(number: int) -> None:
        barrier.wait()
        for round_ in range(6):
            entry = _entry(number * 100 + round_)
            (other if number % 5 == 0 else writer).record(entry)
            if number == 1 and round_ % 2 == 0:
                with transaction(sessions) as session:
                    append_event(session, actor="admin", action="hold.place")

    try:
        with concurrent.futures.ThreadPoolExecutor(50) as pool:
            list(pool.map(read, range(50)))
    finally:
        writer.close()
        other.close()
    report = verify_chain(sessions)
    assert report.intact, report.problem
    assert report.entries == len(chain) + 300 + 3
    assert writer.entries + other.entries == 300
    assert writer.batches < writer.entries  # entries did share commits
    with sessions() as session:
        cases = session.scalars(select(AuditEvent.case_ref).where(AuditEvent.action == "play"))
        assert sorted(cases) == sorted(f"D-{n * 100 + r}" for n in range(50) for r in range(6))


def test_an_entry_that_cannot_be_committed_refuses_the_access(
    sessions: sessionmaker[Session], chain: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = AuditWriter(sessions)

    def broken(session: Session, entries: list[AuditEntry]) -> list[str]:
        raise OperationalError("INSERT INTO audit_events …", {}, Exception("disk I/O error"))

    monkeypatch.setattr(audit, "append_entries", broken)
    with pytest.raises(CatalogueUnavailable, match=r"could not record the access \(Operational"):
        writer.record(_entry(1))
    monkeypatch.undo()
    writer.record(_entry(2))  # the writer goes on once the catalogue is back
    writer.close()
    with pytest.raises(CatalogueUnavailable, match="closed"):
        writer.record(_entry(3))
    report = verify_chain(sessions)
    assert report.intact
    assert report.entries == len(chain) + 1


def test_a_writer_that_cannot_get_the_lock_in_time_refuses_the_access(
    sessions: sessionmaker[Session], chain: list[int]
) -> None:
    writer = AuditWriter(sessions, wait_s=0.3)
    entered, leave = threading.Event(), threading.Event()

    def hold_the_chain() -> None:
        with transaction(sessions) as session:
            append_event(session, actor="admin", action="hold.place")
            entered.set()
            leave.wait(10)

    holder = threading.Thread(target=hold_the_chain)
    holder.start()
    try:
        assert entered.wait(10)
        with pytest.raises(CatalogueUnavailable, match=r"took no entry for 0\.3 s"):
            writer.record(_entry(1))
    finally:
        leave.set()
        holder.join()
        writer.close()
    # The refused access was still recorded once the lock was free: over-recorded, never under.
    report = verify_chain(sessions)
    assert report.intact
    assert report.entries == len(chain) + 2


def test_the_writer_thread_ends_when_idle_and_comes_back(
    sessions: sessionmaker[Session], chain: list[int]
) -> None:
    writer = AuditWriter(sessions, idle_s=0.05)
    writer.record(_entry(1))
    deadline = time.monotonic() + 5
    while writer._thread is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writer._thread is None
    assert not [t for t in threading.enumerate() if t.name == "recarchive-audit" and t.is_alive()]
    writer.record(_entry(2))
    writer.close()
    assert verify_chain(sessions).entries == len(chain) + 2


def test_a_writer_whose_thread_is_gone_starts_another(
    sessions: sessionmaker[Session], chain: list[int]
) -> None:
    """As in a forked child, which inherits the writer but not its thread."""
    writer = AuditWriter(sessions)
    gone = threading.Thread(target=lambda: None)
    gone.start()
    gone.join()
    writer._thread = gone  # white box: what a fork leaves behind
    writer.record(_entry(1))
    writer.close()
    assert verify_chain(sessions).entries == len(chain) + 1


class _SlowToReturn(threading.Condition):
    """The writer's lock, taken late by the writer thread on its third try.

    The third time the writer thread takes its lock after a batch is, in a
    writer whose thread decides to leave and only then says so, the moment
    between the two: an entry queued then must not be left to the thread
    that is leaving.
    """

    def __init__(self) -> None:
        super().__init__()
        self.writer_acquires = 0
        self.delayed = threading.Event()

    def __enter__(self) -> bool:
        if threading.current_thread().name == "recarchive-audit":
            self.writer_acquires += 1
            if self.writer_acquires == 3:
                self.delayed.set()
                time.sleep(0.5)
        return super().__enter__()


def test_an_entry_queued_while_the_idle_thread_leaves_is_written(
    sessions: sessionmaker[Session], chain: list[int]
) -> None:
    writer = AuditWriter(sessions, idle_s=0.05, wait_s=3)
    slow = _SlowToReturn()
    writer._wakeup = slow  # white box: widen the moment the thread leaves
    writer.record(_entry(1))
    slow.delayed.wait(1.0)  # a writer that leaves in two steps is between them now
    writer.record(_entry(2))  # refused after wait_s when its wake-up went to the leaving thread
    writer.close()
    assert verify_chain(sessions).entries == len(chain) + 2
