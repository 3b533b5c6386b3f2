"""``/api/v1/recordings``: search, metadata, audio (with Range), reason-code corrections."""

from __future__ import annotations

import dataclasses
import mimetypes
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from recarchive.access.actors import Actor
from recarchive.access.policy import Action
from recarchive.api.deps import ClientDep, PrincipalDep, RuntimeDep
from recarchive.api.schemas import (
    COMMON_ERRORS,
    ErrorOut,
    ReasonsIn,
    ReasonsOut,
    RecordingDetailOut,
    SearchIn,
    SearchOut,
)
from recarchive.errors import RecArchiveError
from recarchive.lookup.filters import (
    PARTS_MEANING,
    STARTED_FROM_MEANING,
    STARTED_TO_MEANING,
    FilterError,
    SearchFilters,
    parse_filters,
)
from recarchive.lookup.services import AudioAccess, get_recording, open_audio, search
from recarchive.lookup.views import AudioMissing
from recarchive.media.transcode import PlaybackFormat, transcode_for_playback
from recarchive.privacy.reasons import correct_reasons
from recarchive.private_files import make_private_dir, open_private
from recarchive.runtime import Runtime
from recarchive.storage.interfaces import ByteRange

router = APIRouter(prefix="/api/v1/recordings", tags=["recordings"])

_ERRORS = COMMON_ERRORS
_ONE: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    404: {"model": ErrorOut, "description": "No such recording."},
    410: {"model": ErrorOut, "description": "Deleted; the body carries its tombstone."},
}
_CONTENT_TYPES = {
    "wav": "audio/wav",
    "ogg": "audio/ogg",
    "opus": "audio/ogg",
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
    "gsm": "audio/x-gsm",
}
_PLAYBACK_TYPES = {"opus": "audio/ogg", "mp3": "audio/mpeg", "wav": "audio/wav"}
_RANGE = re.compile(r"^bytes=(\d{0,18})-(\d{0,18})$")


def search_filters(runtime: Runtime, body: SearchIn) -> SearchFilters:
    """The search a body asks for, parsed (also what a case links from a search)."""
    settings = runtime.settings
    identity_key = settings.secret("identity_hash_key") if body.identity_code else None
    parsed = parse_filters(
        customer_id=body.customer_id,
        number=body.number,
        identity_code=body.identity_code,
        identity_key=identity_key,
        started_from=body.from_,
        started_to=body.to,
        reasons=body.reason,
        agent=body.agent,
        queue=body.queue,
        direction=body.direction,
        min_duration_s=body.min_duration,
        max_duration_s=body.max_duration,
        held=body.held,
        oldest_first=body.order == "oldest",
        region=settings.ingest.default_region,
        timezone=settings.tz,
        taxonomy=tuple(settings.reasons.codes),
    )
    return dataclasses.replace(parsed, every_part=body.parts == "all")


def _search(runtime: Runtime, principal: Any, body: SearchIn, client: str | None) -> Response:
    """The page as JSON, built straight from the views (the model only documents it)."""
    page = search(
        runtime,
        principal,
        search_filters(runtime, body),
        cursor=body.cursor,
        limit=body.limit,
        client_addr=client,
    )
    return JSONResponse(
        {"items": [item.as_dict() for item in page.items], "next_cursor": page.next_cursor}
    )


@router.get("", response_model=SearchOut, responses=_ERRORS, summary="Search recordings")
def search_recordings(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    client: ClientDep,
    customer_id: Annotated[str | None, Query(max_length=128)] = None,
    number: Annotated[
        str | None, Query(max_length=64, description="Any Finnish or E.164 spelling.")
    ] = None,
    identity_code: Annotated[
        str | None,
        Query(max_length=64, description="Henkilötunnus or Y-tunnus; prefer POST /search."),
    ] = None,
    from_: Annotated[
        str | None,
        Query(
            alias="from",
            max_length=64,
            description=STARTED_FROM_MEANING,
        ),
    ] = None,
    to: Annotated[
        str | None,
        Query(
            max_length=64,
            description=STARTED_TO_MEANING,
        ),
    ] = None,
    reason: Annotated[list[str] | None, Query(max_length=20)] = None,
    agent: Annotated[str | None, Query(max_length=128)] = None,
    queue: Annotated[str | None, Query(max_length=128)] = None,
    direction: Annotated[
        Literal["inbound", "outbound", "internal", "unknown"] | None, Query()
    ] = None,
    min_duration: Annotated[float | None, Query(ge=0, le=604800, description="Seconds.")] = None,
    max_duration: Annotated[float | None, Query(ge=0, le=604800, description="Seconds.")] = None,
    held: bool | None = None,
    order: Literal["newest", "oldest"] = "newest",
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    parts: Annotated[Literal["first", "all"], Query(description=PARTS_MEANING)] = "first",
) -> Response:
    """Recordings matching every filter given, newest first; ``next_cursor`` pages on.

    A call recorded in several parts is found once (its earliest matching part,
    the others in ``parts``); ``parts=all`` lists every matching recording.
    """
    body = SearchIn.model_validate(
        {
            "customer_id": customer_id,
            "number": number,
            "identity_code": identity_code,
            "from": from_,
            "to": to,
            "reason": reason or [],
            "agent": agent,
            "queue": queue,
            "direction": direction,
            "min_duration": min_duration,
            "max_duration": max_duration,
            "held": held,
            "order": order,
            "cursor": cursor,
            "limit": limit,
            "parts": parts,
        }
    )
    return _search(runtime, principal, body, client)


@router.post("/search", response_model=SearchOut, responses=_ERRORS, summary="Search (body)")
def search_recordings_body(
    runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep, body: SearchIn
) -> Response:
    """As ``GET /recordings``, with the filters in a JSON body."""
    return _search(runtime, principal, body, client)


@router.get("/{recording_id}", response_model=RecordingDetailOut, responses=_ONE)
def recording_metadata(
    recording_id: uuid.UUID, runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep
) -> RecordingDetailOut:
    """Metadata, reason codes, holds, retention and last integrity check of one recording
    (audited as a view)."""
    view = get_recording(runtime, principal, recording_id, client_addr=client)
    return RecordingDetailOut.model_validate(view.as_dict())


def _parse_range(header: str | None) -> tuple[ByteRange | None, int | None]:
    """``(range, suffix)`` from a Range header; one range only, anything else is ignored.

    RFC 9110 lets a server ignore a Range header it does not support: a
    malformed header or several ranges get the whole recording (200).
    """
    if not header:
        return None, None
    match = _RANGE.match(header.strip().replace(" ", ""))
    if match is None:
        return None, None
    first, last = match.group(1), match.group(2)
    if not first and not last:
        return None, None
    if not first:
        return None, int(last)
    start = int(first)
    end = int(last) if last else None
    if end is not None and end < start:
        return None, None  # syntactically invalid: ignored, as RFC 9110 says
    return ByteRange(start, end), None


def _stored_response(access: AudioAccess, download: bool) -> Response:
    content_type = _CONTENT_TYPES.get(access.format) or (
        mimetypes.guess_type(f"x.{access.format}")[0] or "application/octet-stream"
    )
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": f'"{access.sha256}"',
        "Cache-Control": "private, no-store",
        "Content-Disposition": _disposition(access, access.format, download),
    }
    if access.range is not None:
        start, end = access.range
        headers["Content-Range"] = f"bytes {start}-{end}/{access.size_bytes}"
        headers["Content-Length"] = str(end - start + 1)
        status = 206
    else:
        headers["Content-Length"] = str(access.size_bytes)
        status = 200
    return StreamingResponse(
        access.chunks(), status_code=status, media_type=content_type, headers=headers
    )


def _disposition(access: AudioAccess, extension: str, download: bool) -> str:
    kind = "attachment" if download else "inline"
    return f'{kind}; filename="{access.recording_id}.{extension}"'


def _fetch(runtime: Runtime, access: AudioAccess, tmp: Path) -> Path:
    """Copy the stored object to ``tmp`` before any header is sent (a 404 is still possible)."""
    path = tmp / f"audio.{access.format}"
    try:
        with runtime.store.get(access.object_key) as reader, open_private(path) as out:
            for chunk in reader.iter_chunks():
                out.write(chunk)
    except RecArchiveError as exc:
        raise AudioMissing(f"the audio of recording {access.recording_id} is missing") from exc
    return path


def _transcoded(runtime: Runtime, access: AudioAccess, path: Path, fmt: str) -> Iterator[bytes]:
    """Stream the fetched copy transcoded; the copy goes when the stream ends."""
    stream = transcode_for_playback(
        path,
        cast(PlaybackFormat, fmt),  # checked by the route's Literal
        extension=access.format,
        label=f"recording {access.recording_id}",
        timeout_s=runtime.settings.api.transcode_timeout_s,
    )
    try:
        yield from stream
    finally:
        stream.close()  # kills ffmpeg when the listener goes away
        shutil.rmtree(path.parent, ignore_errors=True)


@router.get(
    "/{recording_id}/audio",
    responses={
        **_ONE,
        200: {"content": {"audio/wav": {}, "audio/ogg": {}, "audio/mpeg": {}}},
        206: {"description": "Part of the stored audio, as the Range header asked."},
        416: {"model": ErrorOut, "description": "The Range starts past the end."},
    },
    response_class=Response,
)
def recording_audio(
    recording_id: uuid.UUID,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    client: ClientDep,
    request: Request,
    purpose: Annotated[
        Literal["training", "dispute", "data_subject_request", "self_review"] | None,
        Query(description="Why the recording is played; required."),
    ] = None,
    case: Annotated[
        str | None,
        Query(max_length=128, description="Case reference; required for dispute."),
    ] = None,
    format: Annotated[
        Literal["opus", "mp3", "wav"] | None,
        Query(description="Transcode for playback (no Range support); default: as stored."),
    ] = None,
    download: Annotated[bool, Query(description="Audited as a download, not a play.")] = False,
    range_header: Annotated[str | None, Header(alias="range", max_length=200)] = None,
) -> Response:
    """The recording's audio for a stated purpose; Range requests get 206 (audited each).

    A full read of the stored audio is checked against its SHA-256 as it is
    sent: on a mismatch the last bytes are withheld and the connection cut.
    """
    byte_range, suffix = (None, None) if format else _parse_range(range_header)
    access = open_audio(
        runtime,
        principal,
        recording_id,
        purpose=purpose,
        case_ref=case,
        download=download,
        byte_range=byte_range,
        suffix_length=suffix,
        output_format=format,
        client_addr=client,
        on_mismatch=request.app.state.metrics.integrity_mismatch,
    )
    if format is None:
        return _stored_response(access, download)
    headers = {
        "Accept-Ranges": "none",
        "Cache-Control": "private, no-store",
        "Content-Disposition": _disposition(
            access, "ogg" if format == "opus" else format, download
        ),
    }
    work = runtime.settings.work_dir
    make_private_dir(work)
    tmp = Path(tempfile.mkdtemp(prefix="play-", dir=work))
    try:
        path = _fetch(runtime, access, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return StreamingResponse(
        _transcoded(runtime, access, path, format),
        media_type=_PLAYBACK_TYPES[format],
        headers=headers,
        background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True),
    )


@router.post(
    "/{recording_id}/reasons",
    response_model=ReasonsOut,
    responses=_ONE,
    summary="Correct reason codes",
)
def correct_recording_reasons(
    recording_id: uuid.UUID,
    body: ReasonsIn,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    client: ClientDep,
) -> ReasonsOut:
    """Replace (``set``), add or remove reason codes; the old and new codes are audited."""
    actor = Actor.staff(principal, client)
    actor.require(Action.TAG)  # before the body is looked at: a refusal says nothing
    if body.set is None and not body.add and not body.remove:
        raise FilterError("set", "give set, add or remove")
    change = correct_reasons(
        runtime.sessions,
        recording_id,
        taxonomy=tuple(runtime.settings.reasons.codes),
        actor=actor,
        replace=body.set,
        add=body.add,
        remove=body.remove,
    )
    return ReasonsOut(
        id=recording_id,
        before=list(change.before),
        after=list(change.after),
        changed=change.changed,
    )
