"""Evidence packages: a case's recordings in a zip that proves itself, offline, years later.

:func:`build_evidence_package` writes, for the recordings it is given and
the case's facts:

- ``audio/<id>.<ext>``: each recording's original bytes as ingested (the
  bytes whose SHA-256 and size the catalogue recorded; encrypted ones are
  decrypted on the way), streamed from the store: memory stays flat however
  long the call. Each is hashed while written: bytes that do not match the
  catalogue stop the export (audited ``integrity.mismatch``), never a
  package that lies.
- ``custody.jsonl``: every audit entry about these recordings or the case,
  oldest first, each in the form its hash covers plus ``seq`` and ``hash``.
- ``audit-anchor.json``: the audit chain's newest signed anchor (published
  now, so it covers every custody entry) and the audit key's public key.
- ``evidence-public-key.pem``, ``README.txt`` (the openssl and sha256sum
  commands that check the package without recarchive), ``SHA256SUMS``.
- ``manifest.json``: the case, every recording's facts, and the SHA-256 of
  every file above (``SHA256SUMS`` included); ``manifest.sig``: its Ed25519
  signature with the installation's evidence key (:mod:`.keys`);
  ``timestamp.tsr`` and ``tsa-ca.pem`` when a time-stamping authority is
  configured (:mod:`.timestamping`).

:mod:`recarchive.disputes.verify` checks all of it. The export is audited
(``case.export``, and ``export`` for each recording) once the package is
complete; a failure leaves the caller's stream unusable, so callers write
to a temporary file and rename it only when this returns.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import json
import logging
import os
import urllib.parse
import uuid
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select

from recarchive import __version__
from recarchive.access.actors import Actor
from recarchive.access.audit import append_event
from recarchive.access.policy import Action, Purpose
from recarchive.catalogue.database import transaction, utcnow
from recarchive.catalogue.models import Recording, RecordingStatus
from recarchive.disputes.custody_record import anchor_document, custody_lines
from recarchive.disputes.keys import evidence_key_path, load_evidence_key, public_key_pem
from recarchive.disputes.package_format import (
    ANCHOR,
    CUSTODY,
    FORMAT,
    MANIFEST,
    PUBLIC_KEY,
    README,
    SIGNATURE,
    SUMS,
    TIMESTAMP,
    TSA_CA,
    key_fingerprint,
)
from recarchive.disputes.package_readme import readme_text
from recarchive.disputes.timestamping import Timestamp, read_tsa_ca, request_timestamp
from recarchive.errors import (
    EncryptionError,
    GoneError,
    InvalidInputError,
    KeyProviderUnavailable,
    NotFoundError,
    ObjectNotFound,
    RecArchiveError,
)
from recarchive.private_files import open_private
from recarchive.runtime import Runtime
from recarchive.storage.interfaces import CHUNK_SIZE

logger = logging.getLogger(__name__)

_ROWS = 1000


class EvidenceIntegrityError(RecArchiveError):
    """a recording's stored bytes do not match its SHA-256: no evidence package was written"""

    #: Stored audio failed its checksum: a fault of the archive, for the operator.
    code = "integrity_error"
    log_event = "evidence_refused"


@dataclasses.dataclass(frozen=True)
class EvidenceSummary:
    """What a package holds and proves: for the case's record of its exports."""

    manifest_sha256: str
    recordings: int
    custody_entries: int
    #: The time the TSA's token states (None: no TSA configured).
    timestamped_at: dt.datetime | None
    #: SHA-256 of the evidence key's public key (DER SubjectPublicKeyInfo).
    public_key_sha256: str


def build_evidence_package(
    runtime: Runtime,
    *,
    recording_ids: Sequence[uuid.UUID | str],
    case: Mapping[str, Any],
    actor: Actor,
    out: IO[bytes],
    on_progress: Callable[[int, int], None] | None = None,
) -> EvidenceSummary:
    """Write the evidence package of ``recording_ids`` for ``case`` to ``out``; see the module.

    ``case`` holds the case's facts (``reference`` required; ``kind``,
    ``document_ref``, ``customer_id``, ``opened_at``, ``handler``,
    ``status``...), written to the manifest as given. Raises
    :class:`~recarchive.access.policy.Forbidden` unless ``actor`` may export
    evidence; :class:`NotFoundError`/:class:`GoneError` for a recording not
    in the archive; :class:`EvidenceIntegrityError` when stored bytes do not
    match the catalogue; :class:`~.timestamping.TimestampUnavailable` when the
    TSA fails. ``on_progress(written, total)`` follows the recordings.
    """
    actor.require(Action.CASE_EXPORT)
    reference, ids = _targets(case, recording_ids)
    recordings = _recordings(runtime, ids)
    settings = runtime.settings.disputes
    key = load_evidence_key(evidence_key_path(runtime.settings))
    tsa = read_tsa_ca(settings.tsa_ca_file) if settings.tsa_url and settings.tsa_ca_file else None
    tsa_host = urllib.parse.urlsplit(settings.tsa_url).hostname if tsa else None
    anchor, anchor_seq = anchor_document(runtime)
    fingerprint = key_fingerprint(key.public_key())
    installation = anchor["installation_id"]
    generated = utcnow()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        writer = _Writer(archive, generated)
        rows = _write_recordings(runtime, writer, recordings, actor, reference, on_progress)
        custody = _write_custody(runtime, writer, ids, reference, anchor_seq)
        _write_companions(writer, anchor, public_key_pem(key), tsa and tsa[0])
        readme = readme_text(
            reference=reference,
            generated=generated.strftime("%Y-%m-%d %H:%M:%S"),
            actor=actor.name,
            installation=installation,
            count=len(rows),
            fingerprint=fingerprint,
            tsa_host=tsa_host,
        )
        writer.add(README, readme.encode())
        writer.add(SUMS, "".join(f"{h}  {n}\n" for n, h in writer.files.items()).encode())
        manifest = {
            "format": FORMAT,
            "installation_id": installation,
            "generated_at": generated.isoformat(),
            "generated_by": actor.name,
            "generator": f"recarchive {__version__}",
            "case": {name: _plain(value) for name, value in case.items()},
            "recordings": rows,
            "custody": {"file": CUSTODY, "entries": custody, "anchored_seq": anchor_seq},
            "signature": _signature_facts(fingerprint),
            "timestamp": {"file": TIMESTAMP, "tsa": tsa_host, "ca": TSA_CA} if tsa else None,
            "files": dict(writer.files),
        }
        manifest_bytes = json.dumps(manifest, indent=2, ensure_ascii=False).encode() + b"\n"
        stamp: Timestamp | None = None
        if tsa is not None:
            stamp = request_timestamp(
                settings.tsa_url, tsa[1], manifest_bytes, timeout_s=settings.tsa_timeout_s
            )
        writer.add(MANIFEST, manifest_bytes, listed=False)
        writer.add(SIGNATURE, key.sign(manifest_bytes), listed=False)
        if stamp is not None:
            writer.add(TIMESTAMP, stamp.token, listed=False)
    summary = EvidenceSummary(
        manifest_sha256=hashlib.sha256(manifest_bytes).hexdigest(),
        recordings=len(rows),
        custody_entries=custody,
        timestamped_at=stamp.at if stamp else None,
        public_key_sha256=fingerprint,
    )
    _record(runtime, actor, reference, ids, summary)
    return summary


def write_evidence_package(
    runtime: Runtime,
    target: Path,
    *,
    recording_ids: Sequence[uuid.UUID | str],
    case: Mapping[str, Any],
    actor: Actor,
    on_progress: Callable[[int, int], None] | None = None,
) -> EvidenceSummary:
    """:func:`build_evidence_package` into the file ``target`` (mode 0600), all or nothing.

    Written to a temporary file in ``target``'s directory and linked into
    place only when complete: a failure (a mismatch, the TSA) leaves nothing
    at ``target`` and no temporary file. Raises ``FileExistsError`` when
    ``target`` exists (never overwritten).
    """
    if target.exists():
        raise FileExistsError(target)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.part")
    try:
        with open_private(temporary, "xb") as handle:
            summary = build_evidence_package(
                runtime,
                recording_ids=recording_ids,
                case=case,
                actor=actor,
                out=handle,
                on_progress=on_progress,
            )
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temporary, target)  # refuses an existing target, unlike a rename
    finally:
        temporary.unlink(missing_ok=True)
    return summary


def _targets(
    case: Mapping[str, Any], recording_ids: Sequence[uuid.UUID | str]
) -> tuple[str, list[uuid.UUID]]:
    """The case's reference and the recordings' ids (each once)."""
    reference = str(case.get("reference") or "").strip()
    if not reference:
        raise InvalidInputError("an evidence package needs the case's reference")
    try:
        ids = list(dict.fromkeys(uuid.UUID(str(value)) for value in recording_ids))
    except ValueError:
        raise InvalidInputError("a recording id is not a UUID") from None
    if not ids:
        raise InvalidInputError(f"case {reference} has no recordings to export")
    return reference, ids


def _write_companions(
    writer: _Writer, anchor_document: dict[str, Any], public_pem: bytes, tsa_ca: bytes | None
) -> None:
    """The anchor, the evidence key's public half, the TSA's CA certificate."""
    writer.add(ANCHOR, _json(anchor_document))
    writer.add(PUBLIC_KEY, public_pem)
    if tsa_ca is not None:
        writer.add(TSA_CA, tsa_ca)


def _signature_facts(fingerprint: str) -> dict[str, str]:
    return {
        "file": SIGNATURE,
        "algorithm": "Ed25519",
        "public_key": PUBLIC_KEY,
        "public_key_sha256": fingerprint,
    }


def _recordings(runtime: Runtime, ids: list[uuid.UUID]) -> list[Recording]:
    """The recordings, oldest call first; every one must be in the archive."""
    found: dict[uuid.UUID, Recording] = {}
    with runtime.sessions() as session:
        for start in range(0, len(ids), _ROWS):
            batch = ids[start : start + _ROWS]
            found.update(
                (r.id, r) for r in session.scalars(select(Recording).where(Recording.id.in_(batch)))
            )
        session.expunge_all()
    for recording_id in ids:
        recording = found.get(recording_id)
        if recording is None:
            raise NotFoundError(f"recording {recording_id} is not in the archive")
        if recording.status is not RecordingStatus.ACTIVE:
            raise GoneError(f"recording {recording_id} is being deleted: it cannot be exported")
    return sorted(found.values(), key=lambda r: (r.started_at, str(r.id)))


class _Writer:
    """Entries of the zip, each one's SHA-256 kept for the manifest."""

    def __init__(self, archive: zipfile.ZipFile, at: dt.datetime) -> None:
        self.archive = archive
        self.date_time = at.timetuple()[:6]
        self.files: dict[str, str] = {}

    def info(self, name: str, *, stored: bool = False) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=self.date_time)
        info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        return info

    def add(self, name: str, data: bytes, *, listed: bool = True) -> None:
        self.archive.writestr(self.info(name), data)
        if listed:
            self.files[name] = hashlib.sha256(data).hexdigest()


def _write_recordings(
    runtime: Runtime,
    writer: _Writer,
    recordings: list[Recording],
    actor: Actor,
    reference: str,
    on_progress: Callable[[int, int], None] | None,
) -> list[dict[str, Any]]:
    rows = []
    for recording in recordings:
        rows.append(_write_audio(runtime, writer, recording, actor, reference))
        if on_progress is not None:
            on_progress(len(rows), len(recordings))
    return rows


def _write_audio(
    runtime: Runtime, writer: _Writer, recording: Recording, actor: Actor, reference: str
) -> dict[str, Any]:
    name = f"audio/{recording.id}.{recording.format}"
    sha, size = hashlib.sha256(), 0
    try:
        with (
            runtime.store.get(recording.object_key) as reader,
            writer.archive.open(writer.info(name, stored=True), "w", force_zip64=True) as entry,
        ):
            for chunk in reader.iter_chunks(CHUNK_SIZE):
                entry.write(chunk)
                sha.update(chunk)
                size += len(chunk)
        actual: tuple[str | None, int | None] = (sha.hexdigest(), size)
    except ObjectNotFound:
        actual = (None, None)
    except KeyProviderUnavailable:
        raise
    except EncryptionError:  # a chunk that fails authentication, a key that does not unwrap
        actual = (None, size)
    if actual != (recording.sha256, recording.size_bytes):
        _refuse(runtime, recording, actor, reference, actual)
    writer.files[name] = recording.sha256
    return {
        "id": str(recording.id),
        "file": name,
        "sha256": recording.sha256,
        "size_bytes": recording.size_bytes,
        "started_at": recording.started_at.isoformat(),
        "duration_ms": recording.duration_ms,
        "direction": recording.direction.value,
        "agent": recording.agent,
        "queue": recording.queue,
        "caller_number": recording.caller_number,
        "called_number": recording.called_number,
        "customer_id": recording.customer_id,
        "call_id": recording.call_id,
        "source": recording.source,
        "source_ref": recording.source_ref,
        "ingested_at": recording.created_at.isoformat(),
        "format": recording.format,
        "codec": recording.codec,
        "channels": recording.channels,
        "sample_rate": recording.sample_rate,
    }


def _refuse(
    runtime: Runtime,
    recording: Recording,
    actor: Actor,
    reference: str,
    actual: tuple[str | None, int | None],
) -> None:
    """Record the mismatch found (as ``recarchive verify`` does) and stop the export."""
    logger.error(
        "integrity_mismatch",
        extra={"recording_id": str(recording.id), "object_key": recording.object_key},
    )
    with transaction(runtime.sessions) as session:
        append_event(
            session,
            actor=actor.name,
            actor_role=actor.role_name,
            action="integrity.mismatch",
            recording_id=recording.id,
            case_ref=reference,
            client_addr=actor.client_addr,
            details={
                "object_key": recording.object_key,
                "expected_sha256": recording.sha256,
                "actual_sha256": actual[0],
                "expected_size": recording.size_bytes,
                "actual_size": actual[1],
                "found_by": "case.export",
            },
        )
    raise EvidenceIntegrityError(
        f"recording {recording.id}: the stored audio does not match the SHA-256 the archive "
        "recorded at ingest; no evidence package was written (run `recarchive verify`)"
    )


def _write_custody(
    runtime: Runtime, writer: _Writer, ids: list[uuid.UUID], reference: str, through_seq: int
) -> int:
    """custody.jsonl, streamed a page at a time; the number of entries."""
    sha, count = hashlib.sha256(), 0
    with writer.archive.open(writer.info(CUSTODY), "w", force_zip64=True) as entry:
        for line in custody_lines(runtime, ids, reference, through_seq):
            entry.write(line)
            sha.update(line)
            count += 1
    writer.files[CUSTODY] = sha.hexdigest()
    return count


def _record(
    runtime: Runtime,
    actor: Actor,
    reference: str,
    ids: list[uuid.UUID],
    summary: EvidenceSummary,
) -> None:
    """The export on record: one ``case.export`` entry, and an ``export`` per recording."""
    with transaction(runtime.sessions) as session:
        append_event(
            session,
            actor=actor.name,
            actor_role=actor.role_name,
            action="case.export",
            case_ref=reference,
            client_addr=actor.client_addr,
            details={
                "recordings": summary.recordings,
                "manifest_sha256": summary.manifest_sha256,
                "timestamped": summary.timestamped_at is not None,
            },
        )
        for recording_id in ids:
            append_event(
                session,
                actor=actor.name,
                actor_role=actor.role_name,
                action="export",
                recording_id=recording_id,
                purpose=Purpose.DISPUTE.value,
                case_ref=reference,
                client_addr=actor.client_addr,
            )


def _plain(value: Any) -> Any:
    """A case fact as JSON: times in ISO 8601, ids and enums as strings."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _json(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, indent=1, sort_keys=True).encode() + b"\n"
