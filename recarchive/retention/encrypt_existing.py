"""Encrypting the recordings archived in plaintext, write-new-then-switch.

:func:`encrypt_existing` takes the active plaintext recordings
(``recordings.encrypted`` false) in batches. For each one it reads the
object, encrypts it under a new data key to a new object key
(:func:`sealed_object_key`, the same name with ``.sealed`` before the
extension, with the old object's tags) while checking the plaintext's size
and SHA-256 against the catalogue's, then switches in one transaction: the
row's ``object_key``, its wrapped data key and ``encrypted = true``; only
then is the plaintext object deleted. ``recordings.sha256`` does not change.

A kill at any point leaves every recording readable: before the switch the
row still names the plaintext object (the new object, if written, is an
orphan whose data key was never kept: noise; the next run writes it again);
after it, the row names the encrypted object and its key. A plaintext object
left behind by a kill after the switch is deleted by the next run
(:func:`_delete_leftovers`).

Held recordings are skipped (a dispute's evidence stays byte for byte as it
is), and so are recordings due for expiry and those being deleted. The
switch re-checks, under the catalogue's write lock, that the recording is
still active, unheld, not due and still names the object that was read: a
recording claimed for deletion meanwhile is never switched (its new object
is deleted again), so nothing comes back from an expiry or an erasure.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recarchive.access.actors import Actor
from recarchive.access.audit import append_event
from recarchive.catalogue.data_keys import keep_data_key, new_data_key_for
from recarchive.catalogue.database import lock_for_write, transaction, utcnow
from recarchive.catalogue.models import Recording, RecordingStatus
from recarchive.errors import ConfigError, InvalidInputError, ObjectNotFound, RecArchiveError
from recarchive.parts import Archive, Sessions
from recarchive.retention.rules import held_condition
from recarchive.runtime import Runtime
from recarchive.storage.sealed import put_encrypted

logger = logging.getLogger(__name__)

#: Recordings per batch unless told otherwise.
BATCH_SIZE = 100
#: What :func:`sealed_object_key` puts before the extension.
SEALED_MARK = ".sealed"

__all__ = ["BATCH_SIZE", "EncryptionReport", "encrypt_existing", "sealed_object_key"]


@dataclasses.dataclass
class EncryptionReport:
    """What a run of ``keys encrypt-existing`` did."""

    encrypted: int = 0
    #: Plaintext objects deleted after their recording switched (this run's and leftovers).
    plaintext_deleted: int = 0
    #: Skipped recordings still in plaintext, by why: ``held``, ``due``, ``deleting``, ``changed``.
    skipped: dict[str, int] = dataclasses.field(default_factory=dict)
    #: Recordings that could not be encrypted (recording id -> reason): left as they are.
    failed: dict[str, str] = dataclasses.field(default_factory=dict)
    #: Plaintext recordings left after the run.
    remaining: int = 0

    @property
    def complete(self) -> bool:
        return not self.remaining and not self.failed

    def skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1


def sealed_object_key(plaintext_key: str) -> str:
    """Where the encrypted copy of ``plaintext_key`` goes: ``.sealed`` before the extension."""
    folder, _, name = plaintext_key.rpartition("/")
    stem, dot, extension = name.partition(".")
    return f"{folder}/{stem}{SEALED_MARK}{dot}{extension}"


def _plaintext_key(sealed_key: str) -> str:
    return sealed_key.replace(SEALED_MARK, "", 1)


def encrypt_existing(
    runtime: Runtime,
    *,
    batch_size: int = BATCH_SIZE,
    on_batch: Callable[[EncryptionReport], None] | None = None,
) -> EncryptionReport:
    """Encrypt every active, unheld, not yet due plaintext recording; report what was done.

    Raises :class:`~recarchive.errors.ConfigError` when encryption is not
    enabled (what is ingested next would be plaintext again) and the key
    provider's errors when it cannot be reached.
    """
    if batch_size < 1:
        raise InvalidInputError(f"the batch size must be at least 1, got {batch_size}")
    if not runtime.settings.encryption.enabled:
        raise ConfigError("encryption.enabled is false: enable encryption at rest first")
    runtime.key_provider.current_kek_id()  # fails now, before any object is read
    report = EncryptionReport()
    _delete_leftovers(runtime, report)
    after: uuid.UUID | None = None
    while True:
        batch = _next_batch(runtime, after, batch_size)
        for recording in batch:
            _encrypt_one(runtime, recording, report)
        if on_batch is not None and batch:
            on_batch(report)
        if len(batch) < batch_size:
            break
        after = batch[-1].id
    with transaction(runtime.sessions) as session:
        report.remaining = int(
            session.scalar(
                select(func.count(Recording.id)).where(
                    Recording.encrypted.is_(False), Recording.status == RecordingStatus.ACTIVE
                )
            )
            or 0
        )
        actor = Actor.system()
        append_event(
            session,
            actor=actor.name,
            actor_role=actor.role_name,
            client_addr=actor.client_addr,
            action="keys.encrypt_existing",
            details=dataclasses.asdict(report),
        )
    return report


def _next_batch(runtime: Sessions, after: uuid.UUID | None, size: int) -> list[Recording]:
    """The next plaintext recordings after ``after`` (by id), whatever their state."""
    statement = select(Recording).where(Recording.encrypted.is_(False))
    if after is not None:
        statement = statement.where(Recording.id > after)
    with runtime.sessions() as session:
        rows = list(session.scalars(statement.order_by(Recording.id).limit(size)))
        session.expunge_all()
    return rows


def _why_not(session: Session, recording_id: uuid.UUID, object_key: str) -> str | None:
    """Why the recording may not be switched now (None: it may), read under the write lock."""
    now = utcnow()
    row = session.execute(
        select(Recording.status, Recording.encrypted, Recording.object_key, Recording.retain_until)
        .add_columns(held_condition(now).label("held"))
        .where(Recording.id == recording_id)
        .with_for_update()
    ).one_or_none()
    if row is None or row.status != RecordingStatus.ACTIVE:
        return "deleting"
    if row.encrypted or row.object_key != object_key:
        return "changed"
    if row.held:
        return "held"
    if row.retain_until <= now:
        return "due"
    return None


def _encrypt_one(runtime: Runtime, recording: Recording, report: EncryptionReport) -> None:
    with runtime.sessions() as session:
        why = _why_not(session, recording.id, recording.object_key)
    if why is not None:
        report.skip(why)
        return
    store = runtime.store
    new_key = sealed_object_key(recording.object_key)
    data_key, wrapped = new_data_key_for(runtime.key_provider, recording.id)
    try:
        tags = store.get_tags(recording.object_key)
        with store.get(recording.object_key) as reader:
            sealed = put_encrypted(
                store,
                new_key,
                reader,  # type: ignore[arg-type]
                data_key,
                size=recording.size_bytes,
                sha256=recording.sha256,
                tags=tags,
            )
    except ObjectNotFound:
        report.skip("deleting")  # gone meanwhile: an expiry or an erasure at work
        return
    except RecArchiveError as exc:  # a checksum or size mismatch, a store failure
        report.failed[str(recording.id)] = exc.message
        logger.warning("encrypt_existing_failed", extra={"recording_id": str(recording.id)})
        return
    with transaction(runtime.sessions) as session:
        lock_for_write(session)
        why = _why_not(session, recording.id, recording.object_key)
        if why is None:
            row = session.get(Recording, recording.id)
            assert row is not None  # _why_not found it, under the lock
            row.object_key = new_key
            keep_data_key(session, row, wrapped, sealed.header)
    if why is not None:  # claimed, held or changed while it was being encrypted
        report.skip(why)
        try:
            store.delete(new_key)  # no data key was kept for it: noise, removed all the same
        except RecArchiveError:
            logger.warning("encrypt_existing_copy_kept", extra={"object_key": new_key})
        return
    report.encrypted += 1
    _delete_plaintext(runtime, recording.object_key, report)


def _delete_plaintext(runtime: Archive, key: str, report: EncryptionReport) -> None:
    try:
        runtime.store.delete(key)
    except RecArchiveError as exc:  # the next run deletes it (_delete_leftovers)
        logger.warning(
            "encrypt_existing_plaintext_kept", extra={"object_key": key, "error": exc.message}
        )
        return
    report.plaintext_deleted += 1


def _delete_leftovers(runtime: Archive, report: EncryptionReport) -> None:
    """Delete the plaintext objects an earlier run switched away from but did not delete.

    One HEAD request per recording this command has encrypted.
    """
    with runtime.sessions() as session:
        keys = session.scalars(
            select(Recording.object_key).where(
                Recording.encrypted.is_(True),
                Recording.object_key.like(f"%{SEALED_MARK}.%"),
            )
        ).all()
        olds = [_plaintext_key(key) for key in keys]
        named = set(
            session.scalars(select(Recording.object_key).where(Recording.object_key.in_(olds)))
        )
    for old in olds:
        if old not in named and runtime.store.exists(old):
            _delete_plaintext(runtime, old, report)
