"""The data keys of encrypted recordings: made at ingest, looked up to read, destroyed at burial.

One owner for each rule about a recording's data key: a new one is made and
wrapped here (:func:`new_data_key_for`), kept with the recording's row
(:func:`keep_data_key`), unwrapped to read the object
(:class:`CatalogueSeals`, the lookup of
:class:`~recarchive.storage.sealed.SealedObjectStore`), and destroyed here
(:func:`destroy_data_key`), in the transaction that writes the tombstone.
The wrapping binds the recording's id (:func:`key_context`): a wrapped key
moved to another row does not unwrap.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from recarchive.catalogue.models import Recording, RecordingKey
from recarchive.crypto.chunked import new_data_key
from recarchive.crypto.interfaces import KeyProvider, WrappedKey
from recarchive.errors import DataKeyDestroyed
from recarchive.storage.sealed import ObjectSeal

__all__ = [
    "RECORDING_KEYS",
    "CatalogueSeals",
    "WrappedKeyTable",
    "destroy_data_key",
    "destroy_data_keys",
    "keep_data_key",
    "key_context",
    "new_data_key_for",
]


def key_context(recording_id: uuid.UUID) -> bytes:
    """What a recording's wrapped data key is bound to: the recording's id."""
    return b"recording:" + str(recording_id).encode()


@dataclasses.dataclass(frozen=True)
class WrappedKeyTable:
    """Where one kind of object keeps its wrapped data keys (for ``keys rotate`` and ``retire``).

    ``kind`` names the object in reports (``recording``, ``clip``); the
    columns are the row's id and its :class:`WrappedKey`; ``context`` is
    what the wrapping binds (the id, so a key moved to another row does not
    unwrap). Each domain with encrypted objects declares one; the
    composition root lists them all (``composition.py: wrapped_key_tables``).
    """

    kind: str
    id_column: Any
    provider_column: Any
    kek_column: Any
    wrapped_column: Any
    context: Callable[[uuid.UUID], bytes]


def new_data_key_for(provider: KeyProvider, recording_id: uuid.UUID) -> tuple[bytes, WrappedKey]:
    """A new random data key for the recording, and that key wrapped by the provider."""
    data_key = new_data_key()
    return data_key, provider.wrap(data_key, key_context(recording_id))


def keep_data_key(
    session: Session, recording: Recording, wrapped: WrappedKey, header: bytes
) -> None:
    """Mark ``recording`` encrypted and keep its wrapped data key and header with it."""
    recording.encrypted = True
    session.add(
        RecordingKey(
            recording_id=recording.id,
            provider=wrapped.provider,
            kek_id=wrapped.kek_id,
            wrapped_key=wrapped.wrapped,
            header=header,
        )
    )


def destroy_data_key(session: Session, recording_id: uuid.UUID) -> bool:
    """Delete the recording's wrapped data key; True when it had one.

    Irreversible: every copy of the recording's object (backups, replicas,
    versions) is noise from the commit on. Call it in the transaction that
    writes the tombstone.
    """
    result = session.execute(delete(RecordingKey).where(RecordingKey.recording_id == recording_id))
    return bool(getattr(result, "rowcount", 0))


def destroy_data_keys(session: Session, recording_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """:func:`destroy_data_key` for a batch (PostgreSQL, SQLite: DELETE … RETURNING):
    the recordings that had one."""
    destroyed: list[uuid.UUID] = []
    for start in range(0, len(recording_ids), 500):
        part = list(recording_ids[start : start + 500])
        destroyed.extend(
            session.scalars(
                delete(RecordingKey)
                .where(RecordingKey.recording_id.in_(part))
                .returning(RecordingKey.recording_id)
            )
        )
    return destroyed


class CatalogueSeals:
    """Looks up and unwraps the data key of a recording's object, by object key.

    ``provider`` is called on the first encrypted object met (an installation
    with no encrypted recording needs no key provider).
    """

    def __init__(self, sessions: sessionmaker[Session], provider: Callable[[], KeyProvider]):
        self._sessions = sessions
        self._provider = provider

    def lookup(self, object_key: str) -> ObjectSeal | None:
        """The seal of the recording stored under ``object_key``; None for plaintext or unknown.

        Raises :class:`~recarchive.errors.DataKeyDestroyed` for an encrypted
        recording whose data key is gone, and the provider's errors
        (:class:`~recarchive.errors.KeyUnwrapFailed`...).
        """
        statement = (
            select(
                Recording.id,
                Recording.encrypted,
                Recording.size_bytes,
                RecordingKey.provider,
                RecordingKey.kek_id,
                RecordingKey.wrapped_key,
                RecordingKey.header,
            )
            .outerjoin(RecordingKey, RecordingKey.recording_id == Recording.id)
            .where(Recording.object_key == object_key)
        )
        with self._sessions() as session:
            row = session.execute(statement).one_or_none()
        if row is None or not row.encrypted:
            return None
        if row.provider is None:
            raise DataKeyDestroyed(f"the data key of recording {row.id} was destroyed")
        wrapped = WrappedKey(row.provider, row.kek_id, row.wrapped_key)
        data_key = self._provider().unwrap(wrapped, key_context(row.id))
        return ObjectSeal(data_key, row.header, row.size_bytes)


#: The recordings' data keys (``recording_keys``).
RECORDING_KEYS = WrappedKeyTable(
    kind="recording",
    id_column=RecordingKey.recording_id,
    provider_column=RecordingKey.provider,
    kek_column=RecordingKey.kek_id,
    wrapped_column=RecordingKey.wrapped_key,
    context=key_context,
)
