"""Access and portability: a zip of everything the archive holds about a data subject.

The zip holds every recording of the subject in a playable format (as
stored when common players play it, else transcoded to WAV), a JSON
manifest (call times, numbers, reason codes, retention, holds, restrictions,
and who accessed each recording and when, from the audit log), the SHA-256
of every file (in the manifest and in ``SHA256SUMS``), and a short summary
in Finnish (``LUE_MINUT.txt``) and English (``README.txt``).

It is written entry by entry, each recording streamed from the store into
the zip, so an export of thousands of recordings runs in flat memory; the
output need not be seekable. Agents' names are left out: they are other
people's data. Every exported recording gets an ``export`` audit entry.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import tempfile
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from recarchive import __version__
from recarchive.access.audit import append_event
from recarchive.access.models import AuditEvent
from recarchive.access.policy import Action, Purpose, require
from recarchive.access.services import Principal
from recarchive.catalogue.database import transaction, utcnow
from recarchive.catalogue.models import Customer, Recording, RecordingStatus
from recarchive.errors import RecArchiveError
from recarchive.media.transcode import transcode_for_playback
from recarchive.parts import Catalogue, Sessions
from recarchive.privacy.models import RequestKind, RequestStatus, SubjectRequest
from recarchive.privacy.shared import NO_DECISIONS, SharedDecisions, shared_recording_ids
from recarchive.privacy.subjects import (
    Subject,
    SubjectQuery,
    customer_numbers,
    find_subject,
    register_request,
    request_dict,
    restriction_dict,
    subject_condition,
    subject_restrictions,
)
from recarchive.private_files import make_private_dir, open_private
from recarchive.retention.rules import holds_covering
from recarchive.runtime import Runtime

#: Codecs that common players (browsers, VLC, phones) play as stored.
PLAYABLE_CODECS = frozenset(
    {"pcm_s16le", "pcm_u8", "pcm_mulaw", "pcm_alaw", "mp3", "opus", "vorbis", "flac"}
)
_CHUNK = 256 * 1024
_AUDIT_ACTIONS = ("play", "download", "view", "export")
_ROWS = 500


class ExportError(RecArchiveError):
    """the export could not be written"""

    #: Stored audio failed its checksum: a fault of the archive, for the operator.
    code = "integrity_error"
    log_event = "export_failed"


@dataclasses.dataclass
class ExportReport:
    request_id: uuid.UUID
    recordings: int = 0
    bytes_written: int = 0
    transcoded: int = 0
    #: The officer's decisions on calls from a shared number (``SharedDecisions.outcome``).
    shared: dict[str, list[str]] = dataclasses.field(default_factory=dict)


def _accesses(session: Any, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[dict[str, Any]]]:
    found: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for start in range(0, len(ids), _ROWS):
        events = session.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.recording_id.in_(ids[start : start + _ROWS]),
                AuditEvent.action.in_(_AUDIT_ACTIONS),
            )
            .order_by(AuditEvent.seq)
        )
        for event in events:
            assert event.recording_id is not None
            found.setdefault(event.recording_id, []).append(
                {
                    "at": event.at.isoformat(),
                    "by": event.actor,
                    "role": event.actor_role,
                    "action": event.action,
                    "purpose": event.purpose,
                    "case_ref": event.case_ref,
                }
            )
    return found


def _holds(session: Any, recording: Recording) -> list[dict[str, Any]]:
    """Every hold that ever covered the recording, released ones included (its history)."""
    customers = [recording.customer_id, *(c.customer_id for c in recording.candidates)]
    holds = holds_covering(session, recording.id, customers, utcnow(), in_force_only=False)
    return [
        {
            "case_ref": h.case_ref,
            "placed_at": h.placed_at.isoformat(),
            "released_at": h.released_at.isoformat() if h.released_at else None,
        }
        for h in holds
    ]


def _entry_name(recording: Recording, zone: Any, extension: str) -> str:
    local = recording.started_at.astimezone(zone).strftime("%Y%m%d-%H%M%S")
    return f"recordings/{local}_{recording.id.hex[:8]}.{extension}"


def _audio_chunks(runtime: Runtime, recording: Recording, tmp: Path) -> tuple[Iterator[bytes], str]:
    """The recording's bytes as exported and the file extension."""
    if recording.codec in PLAYABLE_CODECS:
        reader = runtime.store.get(recording.object_key)

        def stored() -> Iterator[bytes]:
            with reader:
                yield from reader.iter_chunks(_CHUNK)

        return stored(), recording.format
    path = tmp / f"{recording.id}.{recording.format}"
    with runtime.store.get(recording.object_key) as reader, open_private(path) as out:
        for chunk in reader.iter_chunks(_CHUNK):
            out.write(chunk)

    def transcoded() -> Iterator[bytes]:
        try:
            yield from transcode_for_playback(
                path, "wav", extension=recording.format, label=f"recording {recording.id}"
            )
        finally:
            path.unlink(missing_ok=True)

    return transcoded(), "wav"


_SUMMARY_FI = """Tallenteet, jotka asiakaspalvelun puhelutallennearkisto säilyttää sinusta
==========================================================================

Luotu: {generated} (UTC)
Tallenteita: {count}
Pyynnön tunniste: {request_id}

Kansio recordings/ sisältää jokaisen puhelutallenteen äänitiedostona, jonka
voi kuunnella tavallisella mediasoittimella. Tiedosto manifest.json kertoo
koneluettavasti jokaisesta puhelusta: ajan, puhelinnumerot, yhteydenoton
syyt, säilytysajan, mahdolliset käsittelyrajoitukset ja oikeudelliset
pidot, sekä kuka tallennetta on käyttänyt, milloin ja mihin tarkoitukseen.
Tiedosto SHA256SUMS sisältää jokaisen tiedoston SHA-256-tarkistussumman,
jolla voit varmistaa, etteivät tiedostot ole muuttuneet.

Tallenteet säilytetään {retention} ja poistetaan sen jälkeen automaattisesti,
ellei riidan selvittäminen edellytä pidempää säilytystä.
"""

_SUMMARY_EN = """Call recordings the customer service archive holds about you
=============================================================

Generated: {generated} (UTC)
Recordings: {count}
Request reference: {request_id}

The folder recordings/ holds every call recording as an audio file that
plays in any common media player. manifest.json describes each call in a
machine-readable form: when it took place, the phone numbers, the reasons
for the call, how long it is kept, any restriction of processing or legal
hold, and who accessed it, when and for what purpose. SHA256SUMS lists the
SHA-256 checksum of every file, so you can check that none has changed.

Recordings are kept {retention_en} and then deleted automatically, unless a
dispute requires keeping them longer.
"""


def export_subject(
    runtime: Runtime,
    principal: Principal,
    query: SubjectQuery,
    out: IO[bytes],
    *,
    client_addr: str | None = None,
    shared: SharedDecisions = NO_DECISIONS,
    on_progress: Callable[[int, int | None], None] | None = None,
) -> ExportReport:
    """Write the subject's zip to ``out``; register the access request and audit each file.

    Calls from a number the customer shares with others are exported only
    where ``shared`` includes them; the manifest and the request list the
    ones left out and the ones still undecided. ``on_progress(written,
    total)`` is called after each recording written.
    """
    require(principal.role, Action.SUBJECT)
    subject = find_subject(runtime, query)
    zone = runtime.settings.tz
    report = ExportReport(request_id=uuid.uuid4())
    generated = utcnow()
    manifest_rows: list[dict[str, Any]] = []
    sums: list[str] = []
    with runtime.sessions() as session:
        shared_ids = shared_recording_ids(session, subject.customer_id)
        included = set(shared.split(shared_ids)[0])
        report.shared = shared.outcome(shared_ids)
        ids = list(
            session.scalars(
                select(Recording.id)
                .where(
                    or_(subject_condition(subject), Recording.id.in_(included)),
                    Recording.status == RecordingStatus.ACTIVE,
                )
                .order_by(Recording.started_at)
            )
        )
        accesses = _accesses(session, ids)
    with (
        zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive,
        tempfile.TemporaryDirectory(prefix="recarchive-export-", dir=_scratch(runtime)) as tmp,
    ):
        for start in range(0, len(ids), _ROWS):
            with runtime.sessions() as session:
                batch = list(
                    session.scalars(
                        select(Recording)
                        .where(Recording.id.in_(ids[start : start + _ROWS]))
                        .options(selectinload(Recording.reasons))
                        .order_by(Recording.started_at)
                    )
                )
                holds = {r.id: _holds(session, r) for r in batch}
            for recording in batch:
                row = _write_recording(runtime, archive, recording, zone, Path(tmp), report)
                row["holds"] = holds[recording.id]
                row["shared_number"] = recording.id in included
                row["accesses"] = accesses.get(recording.id, [])
                manifest_rows.append(row)
                sums.append(f"{row['sha256']}  {row['file']}")
                if on_progress is not None:
                    on_progress(len(manifest_rows), len(ids))
        manifest = _manifest(runtime, subject, manifest_rows, generated, report.request_id)
        # Counts only: a call left out may be another customer's.
        manifest["shared_number_calls"] = {
            key.removeprefix("shared_"): len(ids) for key, ids in report.shared.items()
        }
        manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=2).encode()
        archive.writestr("manifest.json", manifest_bytes)
        sums.append(f"{hashlib.sha256(manifest_bytes).hexdigest()}  manifest.json")
        sums += _write_summaries(runtime, archive, generated, report)
        archive.writestr("SHA256SUMS", "\n".join(sums) + "\n")
    _record(runtime, principal, subject, report, ids, client_addr)
    return report


def _write_summaries(
    runtime: Catalogue, archive: zipfile.ZipFile, generated: dt.datetime, report: ExportReport
) -> list[str]:
    """The Finnish and English summaries; their SHA256SUMS lines."""
    retention_days = runtime.settings.retention.default_days
    fields = {
        "generated": generated.strftime("%Y-%m-%d %H:%M"),
        "count": report.recordings,
        "request_id": report.request_id,
    }
    summaries = {
        "LUE_MINUT.txt": _SUMMARY_FI.format(retention=f"{retention_days} päivää", **fields),
        "README.txt": _SUMMARY_EN.format(retention_en=f"{retention_days} days", **fields),
    }
    sums = []
    for name, text in summaries.items():
        data = text.encode()
        archive.writestr(name, data)
        sums.append(f"{hashlib.sha256(data).hexdigest()}  {name}")
    return sums


def _scratch(runtime: Catalogue) -> Path:
    path = runtime.settings.work_dir
    make_private_dir(path)
    return path


def _write_recording(
    runtime: Runtime,
    archive: zipfile.ZipFile,
    recording: Recording,
    zone: Any,
    tmp: Path,
    report: ExportReport,
) -> dict[str, Any]:
    chunks, extension = _audio_chunks(runtime, recording, tmp)
    transcoded = recording.codec not in PLAYABLE_CODECS
    name = _entry_name(recording, zone, extension)
    digest, size = hashlib.sha256(), 0
    info = zipfile.ZipInfo(name, date_time=recording.started_at.astimezone(zone).timetuple()[:6])
    info.compress_type = zipfile.ZIP_STORED  # audio does not deflate well
    with archive.open(info, "w", force_zip64=True) as entry:
        for chunk in chunks:
            entry.write(chunk)
            digest.update(chunk)
            size += len(chunk)
    if not transcoded and digest.hexdigest() != recording.sha256:
        raise ExportError(
            f"recording {recording.id}: the stored audio does not match its SHA-256; "
            "the export was stopped (run `recarchive verify`)"
        )
    report.recordings += 1
    report.bytes_written += size
    report.transcoded += transcoded
    return {
        "id": str(recording.id),
        "file": name,
        "sha256": digest.hexdigest(),
        "size_bytes": size,
        "stored_sha256": recording.sha256,
        "started_at": recording.started_at.isoformat(),
        "started_at_local": recording.started_at.astimezone(zone).isoformat(),
        "duration_s": round(recording.duration_ms / 1000, 3),
        "direction": recording.direction.value,
        "caller_number": recording.caller_number,
        "called_number": recording.called_number,
        "queue": recording.queue,
        "reasons": recording.reason_codes,
        "customer_id": recording.customer_id,
        "retention": {
            "retain_until": recording.retain_until.isoformat(),
            "class": recording.retention_class,
        },
    }


def _manifest(
    runtime: Sessions,
    subject: Subject,
    rows: list[dict[str, Any]],
    generated: dt.datetime,
    request_id: uuid.UUID,
) -> dict[str, Any]:
    with runtime.sessions() as session:
        name, numbers = None, [subject.number] if subject.number else []
        if subject.customer_id is not None:
            customer = session.get(Customer, subject.customer_id)
            name = customer.name if customer is not None else None
            numbers = customer_numbers(session, subject.customer_id)
        restrictions = [restriction_dict(r) for r in subject_restrictions(session, subject)]
        requests = [
            request_dict(r)
            for r in session.scalars(
                select(SubjectRequest).where(SubjectRequest.subject_ref == subject.ref)
            )
        ]
    return {
        "format": "recarchive-subject-export/1",
        "generated_at": generated.isoformat(),
        "generator": f"recarchive {__version__}",
        "request_id": str(request_id),
        "subject": {"customer_id": subject.customer_id, "name": name, "numbers": numbers},
        "recordings": rows,
        "restrictions": restrictions,
        "requests": [{k: v for k, v in r.items() if k not in ("handled_by",)} for r in requests],
    }


def _record(
    runtime: Sessions,
    principal: Principal,
    subject: Subject,
    report: ExportReport,
    ids: list[uuid.UUID],
    client_addr: str | None,
) -> None:
    with transaction(runtime.sessions) as session:
        register_request(
            session,
            kind=RequestKind.ACCESS,
            subject=subject,
            principal=principal,
            status=RequestStatus.COMPLETED,
            outcome={
                "recordings": report.recordings,
                "bytes": report.bytes_written,
                **report.shared,
            },
            client_addr=client_addr,
            request_id=report.request_id,
        )
        for recording_id in ids:
            append_event(
                session,
                actor=principal.user_name,
                actor_role=principal.role.value,
                action="export",
                recording_id=recording_id,
                purpose=Purpose.DATA_SUBJECT_REQUEST.value,
                case_ref=str(report.request_id),
                client_addr=client_addr,
            )
