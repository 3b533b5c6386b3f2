"""The access audit log: append-only and hash-chained.

Every entry stores the hash of the entry before it and its own hash over its
content and that link, so editing, removing or reordering an entry breaks the
chain at that point, which :func:`verify_chain` reports. Entries carry ids,
roles, purposes and case references, never names, numbers or identity codes
of the people in the recordings.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Table, insert, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from recarchive import probes
from recarchive.access.anchoring import APPENDED_INFO, Anchor, session_keys
from recarchive.access.models import AuditEvent
from recarchive.catalogue.database import lock_for_write, transaction, utcnow
from recarchive.catalogue.seals import AuditKeys
from recarchive.errors import CatalogueUnavailable, RecArchiveError

logger = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
_ADVISORY_LOCK_KEY = 0x72656361  # "reca": serialises appends on PostgreSQL


def entry_content(event: AuditEvent) -> dict[str, Any]:
    """What an entry's hash covers: its content and the hash of the entry before it.

    Also the form ``recarchive audit export`` writes, so that an auditor can
    recompute every hash from the export alone.
    """
    return {
        "prev_hash": event.prev_hash,
        "at": event.at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "actor": event.actor,
        "actor_role": event.actor_role,
        "action": event.action,
        "recording_id": str(event.recording_id) if event.recording_id else None,
        "purpose": event.purpose,
        "case_ref": event.case_ref,
        "client_addr": event.client_addr,
        "details": event.details,
    }


def entry_hash(event: AuditEvent) -> str:
    """SHA-256 over the canonical JSON form of :func:`entry_content`."""
    canonical = json.dumps(
        entry_content(event),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class AuditEntry:
    """What one audit entry says, before it is chained."""

    actor: str
    action: str
    actor_role: str | None = None
    recording_id: uuid.UUID | None = None
    purpose: str | None = None
    case_ref: str | None = None
    client_addr: str | None = None
    details: Mapping[str, Any] | None = None
    at: dt.datetime = dataclasses.field(default_factory=utcnow)


class AuditChainBroken(RecArchiveError):
    """The audit log's hash chain is broken: an entry was edited, removed or reordered."""


def _lock_chain(session: Session) -> str:
    """Serialise appenders and return the hash of the chain's last entry.

    On PostgreSQL a transaction-scoped advisory lock; on SQLite the
    database's write lock (:func:`~recarchive.catalogue.database.lock_for_write`).
    A plain SELECT would not do there: the driver runs it outside the write
    transaction, so two appenders could read the same head.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
    else:
        lock_for_write(session)
    previous = session.scalar(select(AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1))
    return previous or GENESIS_HASH


def _event(entry: AuditEntry, prev_hash: str, keys: AuditKeys | None) -> AuditEvent:
    event = AuditEvent(
        at=entry.at,
        actor=entry.actor,
        actor_role=entry.actor_role,
        action=entry.action,
        recording_id=entry.recording_id,
        purpose=entry.purpose,
        case_ref=entry.case_ref,
        client_addr=entry.client_addr,
        details=dict(entry.details or {}),
        prev_hash=prev_hash,
    )
    event.hash = entry_hash(event)
    event.seal = keys.seal(event.hash) if keys is not None else None
    return event


def append_event(
    session: Session,
    *,
    actor: str,
    action: str,
    actor_role: str | None = None,
    recording_id: uuid.UUID | None = None,
    purpose: str | None = None,
    case_ref: str | None = None,
    client_addr: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Append an entry in the caller's transaction (so it commits with the change it records).

    Appenders are serialised before the chain's head is read, so the chain
    never forks (:func:`_lock_chain`). Changes use this; reads, which have no
    transaction of their own to share, go through :class:`AuditWriter`.
    """
    entry = AuditEntry(
        actor=actor,
        action=action,
        actor_role=actor_role,
        recording_id=recording_id,
        purpose=purpose,
        case_ref=case_ref,
        client_addr=client_addr,
        details=details,
    )
    event = _event(entry, _lock_chain(session), session_keys(session))
    session.info[APPENDED_INFO] = True  # the commit is anchored (Runtime's after_commit hook)
    session.add(event)
    session.flush()
    return event


@probes.timed("step: audit batch (lock+head+inserts)")
def append_entries(session: Session, entries: Sequence[AuditEntry]) -> list[str]:
    """Append several entries, in order, under one lock: their hashes.

    One INSERT per entry, executed in order (executemany without RETURNING),
    so ``seq`` follows the chain on both backends.
    """
    previous = _lock_chain(session)
    keys = session_keys(session)
    session.info[APPENDED_INFO] = True
    rows = []
    hashes = []
    for entry in entries:
        event = _event(entry, previous, keys)
        rows.append({column: getattr(event, column) for column in _INSERTED})
        hashes.append(event.hash)
        previous = event.hash
    if rows:
        # The table, not the mapped class: a Core executemany, row by row in order
        # (the ORM's bulk insert may fold rows into one multi-row statement).
        session.execute(insert(cast(Table, AuditEvent.__table__)), rows)
    return hashes


_INSERTED = (
    "at",
    "actor",
    "actor_role",
    "action",
    "recording_id",
    "purpose",
    "case_ref",
    "client_addr",
    "details",
    "prev_hash",
    "hash",
    "seal",
)


class _Pending:
    __slots__ = ("done", "entry", "error")

    def __init__(self, entry: AuditEntry) -> None:
        self.entry = entry
        self.done = threading.Event()
        self.error: BaseException | None = None


class AuditWriter:
    """Group commit for the entries of reads: searches, views, plays, downloads.

    A read has no change of its own to commit with its entry, so instead of
    each request taking the chain's lock, reading its head and committing,
    one thread per process appends whatever entries are waiting under one
    lock, one head read and one commit (:func:`append_entries`). The
    requester waits until its entry is committed and gets an error if it
    was not: nothing is served that is not on record. One at a time this
    costs a hand-over between threads; with many clients, one commit serves
    many requests, and the requests themselves never queue for the lock
    (which on SQLite meant its sleeping busy handler, served unfairly).

    The thread starts with the first entry and ends after ``idle_s``
    without one, so an idle process holds no thread. ``check`` runs after
    each commit (the catalogue is still the one opened,
    :meth:`~recarchive.runtime.Runtime.check_catalogue`): entries committed
    to a catalogue that is gone are not on record, and their reads are refused.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        check: Callable[[], None] | None = None,
        batch_limit: int = 500,
        wait_s: float = 30.0,
        idle_s: float = 5.0,
    ) -> None:
        self._sessions = sessions
        self._check = check
        self._batch_limit = batch_limit
        self._wait_s = wait_s
        self._idle_s = idle_s
        self._queue: collections.deque[_Pending] = collections.deque()
        self._wakeup = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        #: Batches written and entries in them, for the benchmark's breakdown.
        self.batches = 0
        self.entries = 0

    @probes.timed("step: audit record (until committed)")
    def record(self, entry: AuditEntry) -> None:
        """Append ``entry`` to the chain; returns once it is committed.

        Raises :class:`~recarchive.errors.CatalogueUnavailable` if it could
        not be committed within ``wait_s`` or the commit failed. An entry
        that times out may still be written later: an access refused on
        record, never one served off it.
        """
        pending = _Pending(entry)
        with self._wakeup:
            if self._closed:
                raise CatalogueUnavailable("the audit log is closed: the access is refused")
            self._queue.append(pending)
            # Not alive: the process was forked after the thread started (a child
            # has no copy of its threads).
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="recarchive-audit", daemon=True
                )
                self._thread.start()
            else:
                self._wakeup.notify()
        if not pending.done.wait(self._wait_s):
            raise CatalogueUnavailable(
                f"the audit log took no entry for {self._wait_s:g} s: the access is refused"
            )
        if isinstance(pending.error, RecArchiveError):
            raise CatalogueUnavailable(
                f"the audit log could not record the access ({pending.error.message}): "
                "the access is refused"
            ) from pending.error
        if pending.error is not None:
            raise CatalogueUnavailable(
                "the audit log could not record the access "
                f"({type(pending.error).__name__}): the access is refused"
            ) from pending.error

    def check_ready(self) -> None:
        """Raise :class:`~recarchive.errors.CatalogueUnavailable` unless an entry could be
        committed now: the writer is open, the catalogue is the one opened, and the
        chain's lock can be taken (then released: nothing is written). For ``/healthz``."""
        with self._wakeup:
            if self._closed:
                raise CatalogueUnavailable("the audit log is closed")
        if self._check is not None:
            self._check()
        session = self._sessions()
        try:
            session.begin()
            _lock_chain(session)
        except SQLAlchemyError as exc:
            raise CatalogueUnavailable(
                f"the audit log cannot take the chain's lock ({type(exc).__name__})"
            ) from exc
        finally:
            session.rollback()
            session.close()

    def close(self, timeout_s: float = 30.0) -> None:
        """Write what is waiting, then refuse new entries."""
        with self._wakeup:
            self._closed = True
            thread = self._thread
            self._wakeup.notify()
        if thread is not None:
            thread.join(timeout_s)

    def _run(self) -> None:
        try:
            while True:
                with self._wakeup:
                    if not self._queue and not self._closed:
                        self._wakeup.wait(self._idle_s)
                    if not self._queue:
                        # Decided under the lock that :meth:`record` takes: an entry
                        # queued after this starts a new thread, none can be left to
                        # a thread that is leaving.
                        self._forget_thread()
                        return
                    count = min(len(self._queue), self._batch_limit)
                    batch = [self._queue.popleft() for _ in range(count)]
                self._write(batch)
        except BaseException:
            with self._wakeup:  # however the thread ends, the next entry starts a new one
                self._forget_thread()
            raise

    def _forget_thread(self) -> None:
        """Called with the lock held, by the writer thread that is leaving."""
        if self._thread is threading.current_thread():
            self._thread = None

    def _write(self, batch: list[_Pending]) -> None:
        try:
            with transaction(self._sessions) as session:
                append_entries(session, [pending.entry for pending in batch])
            if self._check is not None:
                self._check()  # committed, but to the catalogue this process opened?
        except Exception as exc:  # handed to every waiting requester
            logger.error(
                "audit batch of %d entries not written: %s", len(batch), type(exc).__name__
            )
            for pending in batch:
                pending.error = exc
        else:
            self.batches += 1
            self.entries += len(batch)
        finally:
            for pending in batch:
                pending.done.set()


@dataclasses.dataclass(frozen=True)
class ChainReport:
    entries: int
    #: Sequence number of the first entry that does not fit the chain, if any.
    broken_at: int | None
    problem: str | None
    #: Anchors compared with the chain, and the newest one.
    anchors: int = 0
    latest_anchor: Anchor | None = None
    #: Entries after the newest anchor (committed since, not yet anchored).
    unanchored: int = 0

    @property
    def intact(self) -> bool:
        return self.broken_at is None


def verify_chain(
    sessions: sessionmaker[Session],
    *,
    batch: int = 5000,
    keys: AuditKeys | None = None,
    anchors: Sequence[Anchor] = (),
) -> ChainReport:
    """Walk the whole log in order and check every link and every entry's hash.

    With ``keys``, every entry's seal too (an entry recarchive did not write
    has none that matches). With ``anchors`` (their signatures already
    checked), every anchored entry must be there with the anchored hash, and
    the log must not end before the newest anchor. The first problem found
    is reported, with the entry it concerns.
    """
    walk = _ChainWalk(keys, anchors)
    with sessions() as session:
        while True:
            events = session.scalars(
                select(AuditEvent)
                .where(AuditEvent.seq > walk.last_seq)
                .order_by(AuditEvent.seq)
                .limit(batch)
            ).all()
            if not events:
                return walk.finish()
            for event in events:
                problem = walk.step(event)
                if problem is not None:
                    return ChainReport(walk.count, event.seq, problem, len(anchors))
            session.expunge_all()


class _ChainWalk:
    """The state of :func:`verify_chain` between entries."""

    def __init__(self, keys: AuditKeys | None, anchors: Sequence[Anchor]) -> None:
        self.keys = keys
        self.by_seq: dict[int, list[Anchor]] = {}
        for anchor in anchors:  # several processes may anchor the same head
            self.by_seq.setdefault(anchor.seq, []).append(anchor)
        self.seqs = sorted(self.by_seq)
        self.expected_prev = GENESIS_HASH
        self.count = 0
        self.last_seq = 0
        self.next_anchored = 0  # index into seqs of the next anchored entry to meet
        self.count_at_latest = 0

    def step(self, event: AuditEvent) -> str | None:
        self.count += 1
        self.last_seq = event.seq
        if self.next_anchored < len(self.seqs) and self.seqs[self.next_anchored] < event.seq:
            missing = self.by_seq[self.seqs[self.next_anchored]][0]
            return (
                f"entry {missing.seq}, anchored at {missing.at.isoformat()}, is missing "
                "(entries were removed)"
            )
        if event.prev_hash != self.expected_prev:
            return "link to the previous entry is broken"
        if entry_hash(event) != event.hash:
            return "entry content does not match its hash"
        if self.keys is not None and not self.keys.seal_matches(event.hash, event.seal):
            return "entry has no valid seal: recarchive did not write it (forged or rewritten)"
        for anchor in self.by_seq.get(event.seq, ()):
            if anchor.hash != event.hash:
                return (
                    f"entry differs from the anchor published at {anchor.at.isoformat()} "
                    "(the log was rewritten)"
                )
        if event.seq in self.by_seq:
            self.next_anchored += 1
            self.count_at_latest = self.count
        self.expected_prev = event.hash
        return None

    def finish(self) -> ChainReport:
        anchors = sum(len(found) for found in self.by_seq.values())
        latest = self.by_seq[self.seqs[-1]][-1] if self.seqs else None
        if self.next_anchored < len(self.seqs):
            cut = self.by_seq[self.seqs[self.next_anchored]][0]
            where = f"after entry {self.last_seq}" if self.last_seq else "before its first entry"
            return ChainReport(
                self.count,
                cut.seq,
                f"the log ends {where}, but the anchor published at {cut.at.isoformat()} "
                f"names entry {cut.seq}: entries were removed from its end",
                anchors,
                latest,
            )
        unanchored = self.count - self.count_at_latest
        return ChainReport(self.count, None, None, anchors, latest, unanchored)
