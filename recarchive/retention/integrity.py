"""Integrity check: read stored recordings back and compare them with the catalogue.

:func:`verify_integrity` reads objects from the store as a stream (in
:data:`~recarchive.storage.interfaces.CHUNK_SIZE` chunks: memory stays flat
whatever their size), hashes them with SHA-256 and compares digest and size
with what the catalogue recorded at ingest. A mismatch or a missing object is
reported and recorded in the audit log (``integrity.mismatch``,
``integrity.missing``: recording id, object key, expected and actual SHA-256
and size, ``via: verify``), never repaired: the evidence stays as found for
whoever investigates. Every run ends with an ``integrity.verified`` event
that sums it up. Each recording checked gets its last check recorded
(:func:`~recarchive.retention.checks.record_checks`, ``via: verify``; the
player shows it), :data:`CHECKS_PER_COMMIT` to a commit. Nothing else
changes and nothing is deleted.

Only ``active`` recordings are checked. A ``deleting`` one is on its way
out: its object may be gone already (a deletion in progress, or one a store
failure left unsettled for the next expiry to finish), which is no
integrity failure; such rows are counted apart (``unsettled``), never
recorded as missing. An object that vanishes because expiry or an erasure
deleted its recording while the check ran is not a finding either.

An encrypted recording is read through the store's decryption: every chunk's
GCM tag is checked on the way, and the digest and size compared are the
audio's (the plaintext's), as recorded at ingest. A chunk that fails
authentication, a cut or swapped object, or a data key that does not unwrap
is a mismatch (with no actual digest); a key provider that cannot be
reached stops the run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import func, select

from recarchive.access.audit import append_event
from recarchive.catalogue.database import transaction, utcnow
from recarchive.catalogue.models import Recording, RecordingStatus
from recarchive.errors import EncryptionError, KeyProviderUnavailable, ObjectNotFound
from recarchive.parts import Archive, Sessions
from recarchive.retention.checks import VIA_VERIFY, Check, record_checks
from recarchive.storage.interfaces import CHUNK_SIZE, ObjectStore

logger = logging.getLogger(__name__)

#: Rows per catalogue page when checking everything.
BATCH = 1000
#: Most ids the report lists per finding (the counts are complete; the audit log has all).
SAMPLE = 100
#: Checks recorded per commit (a finding's commit takes those pending with it).
CHECKS_PER_COMMIT = 500
ACTOR = "verify"


@dataclasses.dataclass
class IntegrityReport:
    #: ``sample`` or ``all``.
    mode: str
    checked: int = 0
    ok: int = 0
    mismatched: int = 0
    missing: int = 0
    bytes_read: int = 0
    #: ``deleting`` recordings, not checked: a deletion in progress or left unsettled.
    unsettled: int = 0
    mismatched_ids: list[str] = dataclasses.field(default_factory=list)
    missing_ids: list[str] = dataclasses.field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.mismatched and not self.missing


@dataclasses.dataclass(frozen=True)
class _Expected:
    id: uuid.UUID
    object_key: str
    sha256: str
    size_bytes: int


_COLUMNS = (Recording.id, Recording.object_key, Recording.sha256, Recording.size_bytes)
_ACTIVE = Recording.status == RecordingStatus.ACTIVE


def verify_integrity(
    runtime: Archive,
    *,
    sample: int | None = None,
    all_: bool = False,
    on_progress: Callable[[int, int | None], None] | None = None,
) -> IntegrityReport:
    """Check ``sample`` random active recordings, or all of them; see the module docstring.

    ``on_progress(checked, total)`` is called after each recording checked.

    Raises :class:`ValueError` unless exactly one of ``sample`` (at least 1)
    and ``all_`` is given. Store errors other than a missing object propagate
    (findings made so far are already recorded).
    """
    if all_ == (sample is not None):
        raise ValueError("give sample=N or all_=True, one of them")
    if sample is not None and sample < 1:
        raise ValueError(f"sample must be at least 1, got {sample}")
    report = IntegrityReport(mode="all" if all_ else "sample")
    with runtime.sessions() as session:
        report.unsettled = int(
            session.scalar(
                select(func.count(Recording.id)).where(Recording.status == RecordingStatus.DELETING)
            )
            or 0
        )
        total = sample
        if sample is None:
            total = int(session.scalar(select(func.count(Recording.id)).where(_ACTIVE)) or 0)
    expected = _every_active(runtime) if sample is None else _random_active(runtime, sample)
    checks: list[Check] = []
    try:
        for row in expected:
            _verify_one(runtime, row, report, checks)
            if len(checks) >= CHECKS_PER_COMMIT:
                with transaction(runtime.sessions) as session:
                    record_checks(session, checks)
                checks.clear()
            if on_progress is not None:
                on_progress(report.checked, total)
            if report.checked and report.checked % BATCH == 0:
                logger.info("verify_progress", extra={"checked": report.checked})
    except BaseException:
        _keep_checks(runtime, checks)  # what was found before the failure
        raise
    summary: dict[str, Any] = {
        "mode": report.mode,
        "sample": sample,
        "checked": report.checked,
        "ok": report.ok,
        "mismatched": report.mismatched,
        "missing": report.missing,
        "bytes_read": report.bytes_read,
        "unsettled": report.unsettled,
    }
    with transaction(runtime.sessions) as session:
        record_checks(session, checks)
        append_event(session, actor=ACTOR, action="integrity.verified", details=summary)
    logger.info("verify_done", extra=summary)
    return report


def _random_active(runtime: Sessions, count: int) -> list[_Expected]:
    with runtime.sessions() as session:
        rows = session.execute(
            select(*_COLUMNS).where(_ACTIVE).order_by(func.random()).limit(count)
        ).all()
    return [_Expected(*row) for row in rows]


def _every_active(runtime: Sessions) -> Iterator[_Expected]:
    """Every active recording, a page at a time (no transaction stays open while hashing)."""
    after: uuid.UUID | None = None
    while True:
        statement = select(*_COLUMNS).where(_ACTIVE)
        if after is not None:
            statement = statement.where(Recording.id > after)
        with runtime.sessions() as session:
            rows = session.execute(statement.order_by(Recording.id).limit(BATCH)).all()
        if not rows:
            return
        after = rows[-1].id
        yield from (_Expected(*row) for row in rows)


def _digest(store: ObjectStore, key: str) -> tuple[str, int]:
    """SHA-256 (hex) and size of the stored object, read as a stream."""
    sha = hashlib.sha256()
    size = 0
    with store.get(key) as reader:
        for chunk in reader.iter_chunks(CHUNK_SIZE):
            sha.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), size


def _keep_checks(runtime: Sessions, checks: list[Check]) -> None:
    """Record the pending checks of a run that failed; a failure to is logged, not raised."""
    try:
        with transaction(runtime.sessions) as session:
            record_checks(session, checks)
    except Exception as exc:  # the run's own failure is the one to report
        logger.error("verify_checks_not_recorded", extra={"type": type(exc).__name__})


def _verify_one(
    runtime: Archive, row: _Expected, report: IntegrityReport, checks: list[Check]
) -> None:
    """Check one recording; its check joins ``checks`` (a finding records them at once)."""
    try:
        actual_sha, actual_size = _digest(runtime.store, row.object_key)
    except ObjectNotFound:
        status = _status(runtime, row.id)
        if status is not RecordingStatus.ACTIVE:  # being deleted, or deleted, while we looked
            if status is RecordingStatus.DELETING:
                report.unsettled += 1
            return
        report.checked += 1
        report.missing += 1
        if len(report.missing_ids) < SAMPLE:
            report.missing_ids.append(str(row.id))
        checks.append(Check(row.id, False, VIA_VERIFY, utcnow()))
        _record(runtime, "integrity.missing", row, None, None, checks)
        return
    except KeyProviderUnavailable:
        raise
    except EncryptionError as exc:
        logger.error(
            "integrity_undecryptable",
            extra={"recording_id": str(row.id), "object_key": row.object_key, "error": exc.message},
        )
        actual_sha, actual_size = None, None
    report.checked += 1
    report.bytes_read += actual_size or 0
    ok = actual_sha == row.sha256 and actual_size == row.size_bytes
    checks.append(Check(row.id, ok, VIA_VERIFY, utcnow()))
    if ok:
        report.ok += 1
        return
    report.mismatched += 1
    if len(report.mismatched_ids) < SAMPLE:
        report.mismatched_ids.append(str(row.id))
    _record(runtime, "integrity.mismatch", row, actual_sha, actual_size, checks)


def _status(runtime: Sessions, recording_id: uuid.UUID) -> RecordingStatus | None:
    with runtime.sessions() as session:
        return session.scalar(select(Recording.status).where(Recording.id == recording_id))


def _record(
    runtime: Sessions,
    action: str,
    row: _Expected,
    actual_sha: str | None,
    actual_size: int | None,
    checks: list[Check],
) -> None:
    """Log and audit a finding; the pending checks (the finding's among them) commit with it."""
    logger.error(
        action.replace(".", "_"),
        extra={"recording_id": str(row.id), "object_key": row.object_key},
    )
    with transaction(runtime.sessions) as session:
        append_event(
            session,
            actor=ACTOR,
            action=action,
            recording_id=row.id,
            details={
                "object_key": row.object_key,
                "expected_sha256": row.sha256,
                "actual_sha256": actual_sha,
                "expected_size": row.size_bytes,
                "actual_size": actual_size,
                "via": VIA_VERIFY,
            },
        )
        record_checks(session, checks)
    checks.clear()
