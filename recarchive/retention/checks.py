"""Each recording's last integrity check, and the check of every full read served.

:func:`record_checks` is the one writer of
:class:`~recarchive.retention.models.RecordingCheck`: ``recarchive verify``
(:mod:`recarchive.retention.integrity`) records every recording it read,
and :class:`FullReadCheck` every full read of a recording's audio that the
API serves. A row says when the bytes were last read whole and compared
with the catalogue's SHA-256 and size, whether they matched, and when they
last did (kept through a failure).

:class:`FullReadCheck` hashes the audio while it streams and holds the last
chunk back until the comparison is done: on a mismatch that chunk is never
sent and the stream is cut (:class:`~recarchive.errors.AudioIntegrityFailed`),
so a client never receives a corrupted file as if it were whole. The
mismatch is logged (``integrity_mismatch``), audited
(``integrity.mismatch``, ``via: playback``), counted and recorded. A client
that goes away before the end records nothing. An encrypted recording's
chunks are authenticated on the way; a chunk that fails, or an object cut or
swapped, is a mismatch too.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from recarchive.access.audit import append_event
from recarchive.catalogue.database import lock_for_write, transaction, utcnow
from recarchive.catalogue.models import Recording
from recarchive.errors import (
    AudioIntegrityFailed,
    ChunkAuthenticationFailed,
    HeaderMismatch,
    RecArchiveError,
    TruncatedCiphertext,
)
from recarchive.parts import Archive, Sessions
from recarchive.retention.models import RecordingCheck
from recarchive.storage.interfaces import ObjectReader

logger = logging.getLogger(__name__)

#: What read the bytes (``RecordingCheck.via``).
VIA_VERIFY = "verify"
VIA_PLAYBACK = "playback"
#: Audit actor of a mismatch found while serving audio.
PLAYBACK_ACTOR = "playback"
#: What an encrypted object that is not the one stored raises while it is opened or read.
ALTERED = (ChunkAuthenticationFailed, TruncatedCiphertext, HeaderMismatch)


@dataclasses.dataclass(frozen=True)
class Check:
    """One check's outcome, to be recorded."""

    recording_id: uuid.UUID
    ok: bool
    via: str
    at: dt.datetime


@dataclasses.dataclass(frozen=True)
class Expected:
    """What the catalogue says a recording's audio is."""

    recording_id: uuid.UUID
    object_key: str
    sha256: str
    size_bytes: int


def record_check(
    session: Session, recording_id: uuid.UUID, *, ok: bool, via: str, at: dt.datetime
) -> None:
    """Record one check in ``session``'s transaction; see :func:`record_checks`."""
    record_checks(session, [Check(recording_id, ok, via, at)])


def record_checks(session: Session, checks: Sequence[Check]) -> int:
    """Record checks in ``session``'s transaction; return how many rows were written.

    Each recording's row is inserted or updated: ``ok``, ``via`` and
    ``checked_at`` become the check's, ``last_ok_at`` becomes ``at`` when it
    passed and stays as it was when it failed. Of several checks of one
    recording the latest counts, and a check older than the one recorded
    already changes nothing (a batch of ``verify`` committed after a later
    playback). A recording deleted meanwhile is skipped: its row went with
    it. The recordings' rows are locked (``FOR KEY SHARE`` on PostgreSQL,
    the write lock on SQLite) until the commit, so a deletion waits for the
    write rather than fail it.
    """
    latest: dict[uuid.UUID, Check] = {}
    for check in checks:
        if check.recording_id not in latest or latest[check.recording_id].at <= check.at:
            latest[check.recording_id] = check
    if not latest:
        return 0
    lock_for_write(session)
    present = set(
        session.scalars(
            select(Recording.id)
            .where(Recording.id.in_(list(latest)))
            .with_for_update(key_share=True)
        )
    )
    rows = [
        {
            "recording_id": check.recording_id,
            "checked_at": check.at,
            "ok": check.ok,
            "via": check.via,
            "last_ok_at": check.at if check.ok else None,
        }
        for check in latest.values()
        if check.recording_id in present
    ]
    if rows:
        session.execute(_upsert(session.get_bind().dialect.name), rows)
    return len(rows)


def _upsert(dialect: str) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(RecordingCheck)
    recorded = RecordingCheck.__table__.c
    new = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=["recording_id"],
        set_={
            "checked_at": new.checked_at,
            "ok": new.ok,
            "via": new.via,
            "last_ok_at": func.coalesce(new.last_ok_at, recorded.last_ok_at),
        },
        where=recorded.checked_at <= new.checked_at,
    )


def record_safely(sessions: Sessions, check: Check) -> None:
    """Record ``check`` in a transaction of its own; a catalogue failure is logged, not raised."""
    try:
        with transaction(sessions.sessions) as session:
            record_checks(session, [check])
    except (SQLAlchemyError, RecArchiveError) as exc:
        logger.error(
            "integrity_check_not_recorded",
            extra={"recording_id": str(check.recording_id), "type": type(exc).__name__},
        )


class FullReadCheck:
    """The check of one full read of a recording's audio, served as it is read.

    :meth:`open` opens the whole stored object (not a range of it, so that
    an object grown longer shows too); :meth:`chunks` streams it, hashing as
    it goes, and sends the last chunk only once the digest and size match
    the catalogue's. ``on_mismatch`` is called once per mismatch (the API's
    counter); ``clock`` gives the check's time.
    """

    def __init__(
        self,
        runtime: Archive,
        expected: Expected,
        *,
        on_mismatch: Callable[[], None] | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.runtime = runtime
        self.expected = expected
        self.on_mismatch = on_mismatch
        self.clock = clock

    def open(self) -> ObjectReader:
        """The whole stored object; an encrypted one found altered at once is a mismatch.

        Raises what the store raises (:class:`~recarchive.errors.ObjectNotFound`...).
        """
        try:
            return self.runtime.store.get(self.expected.object_key)
        except ALTERED as exc:
            self._mismatch(None, None, exc)
            raise

    def chunks(self, reader: ObjectReader, chunk_size: int) -> Iterator[bytes]:
        """``reader``'s bytes, the last chunk held back until they are known to match.

        Raises :class:`~recarchive.errors.AudioIntegrityFailed` in place of
        the last chunk (or of the first bytes past the catalogue's size) when
        they do not. A generator closed early (the client went away) checks
        and records nothing. Closes ``reader``.
        """
        expected = self.expected
        sha = hashlib.sha256()
        size = 0
        held: bytes | None = None
        try:
            try:
                for chunk in reader.iter_chunks(chunk_size):
                    sha.update(chunk)
                    size += len(chunk)
                    if size > expected.size_bytes:
                        continue  # longer than catalogued: read on for the digest, send no more
                    if held is not None:
                        yield held
                    held = chunk
            except ALTERED as exc:
                self._mismatch(None, None, exc)
                raise self._cut() from exc
        finally:
            reader.close()
        actual = sha.hexdigest()
        if size != expected.size_bytes or actual != expected.sha256:
            self._mismatch(actual, size)
            raise self._cut()
        record_safely(self.runtime, Check(expected.recording_id, True, VIA_PLAYBACK, self.clock()))
        if held is not None:
            yield held

    def _cut(self) -> AudioIntegrityFailed:
        return AudioIntegrityFailed(
            f"the audio of recording {self.expected.recording_id} does not match its SHA-256 "
            "and size; the stream was cut"
        )

    def _mismatch(
        self, actual_sha: str | None, actual_size: int | None, cause: Exception | None = None
    ) -> None:
        """Log, count, audit and record a mismatch; a catalogue failure is logged, not raised."""
        expected = self.expected
        details: dict[str, Any] = {
            "object_key": expected.object_key,
            "expected_sha256": expected.sha256,
            "actual_sha256": actual_sha,
            "expected_size": expected.size_bytes,
            "actual_size": actual_size,
            "via": VIA_PLAYBACK,
        }
        found = {"error": type(cause).__name__} if cause is not None else {}
        logger.error(
            "integrity_mismatch",
            extra={"recording_id": str(expected.recording_id), **details, **found},
        )
        if self.on_mismatch is not None:
            self.on_mismatch()
        try:
            with transaction(self.runtime.sessions) as session:
                append_event(
                    session,
                    actor=PLAYBACK_ACTOR,
                    action="integrity.mismatch",
                    recording_id=expected.recording_id,
                    details={**details, **found},
                )
                record_checks(
                    session, [Check(expected.recording_id, False, VIA_PLAYBACK, self.clock())]
                )
        except (SQLAlchemyError, RecArchiveError) as exc:
            logger.error(
                "integrity_check_not_recorded",
                extra={"recording_id": str(expected.recording_id), "type": type(exc).__name__},
            )
