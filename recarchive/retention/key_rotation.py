"""Rotating the key-encryption key: data keys re-wrapped under the current KEK, audio untouched.

:func:`rotate_keys` makes a new key-encryption key current (the key file
gets a new last line; a PKCS#11 token gets a key under the configured new
label) and re-wraps, batch by batch, every data key still wrapped under an
older one. Each batch is one transaction: a row is updated only if it still
holds the wrapped key that was read (a data key destroyed by expiry or
erasure meanwhile stays destroyed), so every data key is always under the
old KEK or the new one, never neither. Every table of wrapped data keys is
covered (:class:`~recarchive.catalogue.data_keys.WrappedKeyTable`: the
recordings' and the training clips', listed by ``composition.py:
wrapped_key_tables``), so a key-encryption key is retired only when no
object of any kind needs it. A run that was killed is finished by
the next: while data keys remain under an older KEK, ``rotate_keys`` makes
no new KEK and resumes.

:func:`retire_keys` removes from the key file the older KEKs no data key is
wrapped under any more. Each run leaves one ``keys.rotate`` or
``keys.retire`` audit entry with its counts.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable, Sequence

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from recarchive.access.actors import Actor
from recarchive.access.audit import append_event
from recarchive.catalogue.data_keys import WrappedKeyTable
from recarchive.catalogue.database import transaction
from recarchive.crypto.interfaces import KeyProvider, WrappedKey
from recarchive.crypto.keyfile import key_ids, retire_key_encryption_keys
from recarchive.crypto.providers import key_file_path, new_key_encryption_key
from recarchive.errors import InvalidInputError, KeyEncryptionKeyNotFound, KeyUnwrapFailed
from recarchive.parts import Sessions
from recarchive.runtime import Runtime

logger = logging.getLogger(__name__)

#: Data keys re-wrapped per transaction unless told otherwise.
BATCH_SIZE = 500

__all__ = ["BATCH_SIZE", "RetireReport", "RotationReport", "retire_keys", "rotate_keys"]


@dataclasses.dataclass
class RotationReport:
    """What a run of ``keys rotate`` did."""

    #: The key-encryption key data keys are now wrapped under (``provider:id``).
    current: str
    #: The new KEK this run made current; None when it resumed an unfinished rotation.
    new_kek: str | None = None
    rewrapped: int = 0
    #: Data keys that did not unwrap (``kind id``, e.g. ``recording <id>`` -> reason): left as
    #: they are.
    failed: dict[str, str] = dataclasses.field(default_factory=dict)
    #: Data keys still under an older KEK after the run, by ``provider:id``.
    remaining: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.remaining


def _not_current(table: WrappedKeyTable, provider: KeyProvider, current: str) -> object:
    return or_(table.provider_column != provider.name, table.kek_column != current)


def keys_by_kek(session: Session, tables: Sequence[WrappedKeyTable]) -> dict[str, int]:
    """How many data keys each key-encryption key wraps, by ``provider:id``, over every table."""
    counts: dict[str, int] = {}
    for table in tables:
        rows = session.execute(
            select(table.provider_column, table.kek_column, func.count())
            .where(table.wrapped_column.is_not(None))
            .group_by(table.provider_column, table.kek_column)
        )
        for provider, kek_id, count in rows:
            name = f"{provider}:{kek_id}"
            counts[name] = counts.get(name, 0) + count
    return counts


def rotate_keys(
    runtime: Runtime,
    *,
    tables: Sequence[WrappedKeyTable],
    batch_size: int = BATCH_SIZE,
    new_key: bool = False,
    on_batch: Callable[[RotationReport], None] | None = None,
) -> RotationReport:
    """Make a new KEK current (unless a rotation is unfinished) and re-wrap every data key under it.

    With PKCS#11 the current KEK is ``encryption.pkcs11_key_label``: generated
    on the token when missing; to rotate, the operator sets a new label.

    ``new_key`` makes a new key even while an earlier rotation is unfinished
    (when some data keys cannot be re-wrapped). Never touches an object.
    Raises the provider's errors (:class:`~recarchive.errors.KeyProviderUnavailable`)
    when it cannot be reached; a data key that does not unwrap is reported
    and left as it is.
    """
    if batch_size < 1:
        raise InvalidInputError(f"the batch size must be at least 1, got {batch_size}")
    provider = runtime.key_provider
    with runtime.sessions() as session:
        before = keys_by_kek(session, tables)
    current = f"{provider.name}:{provider.current_kek_id()}"
    new_kek = None
    # The key file gets a new key unless a rotation is unfinished; a token's current key
    # is the configured label, generated when missing (a new label set for a rotation).
    if new_key or not set(before) - {current} or provider.name != "file":
        new_kek = new_key_encryption_key(runtime.settings)
        runtime.__dict__.pop("key_provider", None)  # read the key file again
        provider = runtime.key_provider
        current = f"{provider.name}:{provider.current_kek_id()}"
    report = RotationReport(current, new_kek)
    logger.info("keys.rotate.start", extra={"kek": current, "new_kek": new_kek})
    for table in tables:
        after: uuid.UUID | None = None
        while True:
            done, after = _rewrap_batch(runtime, table, provider, report, after, batch_size)
            if on_batch is not None and done:
                on_batch(report)
            if done < batch_size:
                break
    with transaction(runtime.sessions) as session:
        remaining = keys_by_kek(session, tables).items()
        report.remaining = {k: n for k, n in remaining if k != current}
        _audit(session, "keys.rotate", {**dataclasses.asdict(report), "before": before})
    return report


def _rewrap_batch(
    runtime: Sessions,
    table: WrappedKeyTable,
    provider: KeyProvider,
    report: RotationReport,
    after: uuid.UUID | None,
    batch_size: int,
) -> tuple[int, uuid.UUID | None]:
    """Re-wrap the next batch of data keys after ``after`` in one transaction: (rows, last id)."""
    kek_id = provider.current_kek_id()
    row_id = table.id_column.label("row_id")
    statement = (
        select(row_id, table.provider_column, table.kek_column, table.wrapped_column)
        .where(table.wrapped_column.is_not(None))
        .where(_not_current(table, provider, kek_id))  # type: ignore[arg-type]
        .order_by(table.id_column)
        .limit(batch_size)
        .with_for_update(skip_locked=True)
    )
    if after is not None:
        statement = statement.where(table.id_column > after)
    with transaction(runtime.sessions) as session:
        rows = session.execute(statement).all()
        for row_key, provider_name, old_kek, old_wrapped in rows:
            context = table.context(row_key)
            try:
                data_key = provider.unwrap(WrappedKey(provider_name, old_kek, old_wrapped), context)
            except (KeyEncryptionKeyNotFound, KeyUnwrapFailed) as exc:
                report.failed[f"{table.kind} {row_key}"] = str(exc)
                logger.warning(
                    "keys.rotate.unwrap_failed", extra={"kind": table.kind, "id": row_key}
                )
                continue
            wrapped = provider.wrap(data_key, context)
            result = session.execute(
                update(table.id_column.class_)
                .where(
                    table.id_column == row_key,
                    table.kek_column == old_kek,
                    table.wrapped_column == old_wrapped,
                )
                .values(
                    {
                        table.provider_column: wrapped.provider,
                        table.kek_column: wrapped.kek_id,
                        table.wrapped_column: wrapped.wrapped,
                    }
                )
            )
            report.rewrapped += int(bool(getattr(result, "rowcount", 0)))
    return len(rows), (rows[-1][0] if rows else after)


@dataclasses.dataclass
class RetireReport:
    """What a run of ``keys retire`` did."""

    current: str
    retired: list[str]
    #: Older KEKs kept because data keys are still wrapped under them, with their counts.
    in_use: dict[str, int]


def retire_keys(runtime: Runtime, *, tables: Sequence[WrappedKeyTable]) -> RetireReport:
    """Remove from the key file every older KEK that wraps no data key. Irreversible.

    Only the ``file`` provider keeps its keys where recarchive can remove
    them; a PKCS#11 token's older keys are destroyed with the token's own
    tools. A catalogue backup taken before the rotation holds data keys
    wrapped under the removed keys: they no longer open (docs/security.md).
    """
    if runtime.settings.encryption.provider != "file":
        raise InvalidInputError(
            "keys retire removes keys from the key file only: destroy a PKCS#11 token's "
            "older keys with the token's own tools"
        )
    provider = runtime.key_provider
    path = key_file_path(runtime.settings)
    current = provider.current_kek_id()
    with transaction(runtime.sessions) as session:
        used = keys_by_kek(session, tables)
        in_use = {
            kek: used[f"file:{kek}"]
            for kek in key_ids(path)
            if used.get(f"file:{kek}") and kek != current
        }
        retired = retire_key_encryption_keys(
            path, {kek for kek in key_ids(path) if kek != current and kek not in in_use}
        )
        report = RetireReport(
            f"file:{current}", retired, {f"file:{k}": n for k, n in in_use.items()}
        )
        _audit(session, "keys.retire", dataclasses.asdict(report))
    runtime.__dict__.pop("key_provider", None)
    return report


def _audit(session: Session, action: str, details: dict[str, object]) -> None:
    actor = Actor.system()
    append_event(
        session,
        actor=actor.name,
        actor_role=actor.role_name,
        client_addr=actor.client_addr,
        action=action,
        details=details,
    )
