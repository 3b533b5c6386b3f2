"""``/api/v1/qa/clips``: the training library, for QA trainers.

The routes translate; :mod:`recarchive.qa.clips` decides who may, cuts,
keeps, serves and audits. A clip the library may no longer serve (its call
objected to, restricted, erased or expired) is answered as unknown.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from recarchive.access.actors import Actor
from recarchive.api.deps import ClientDep, PrincipalDep, RuntimeDep
from recarchive.api.schemas import COMMON_ERRORS, ErrorOut, RequestBody
from recarchive.qa.clip_audio import CLIP_CONTENT_TYPE
from recarchive.qa.clips import (
    MAX_CLIP_MS,
    MAX_PURPOSE,
    MAX_REASON,
    MAX_TITLE,
    ClipAudio,
    clip_dict,
    create_clip,
    delete_clip,
    get_clip,
    keep_clip,
    list_clips,
    open_clip_audio,
)

router = APIRouter(prefix="/api/v1/qa/clips", tags=["qa"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    **COMMON_ERRORS,
    403: {"model": ErrorOut, "description": "Only QA trainers use the training library."},
}
_CLIP: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    404: {"model": ErrorOut, "description": "No such clip (or no longer servable)."},
}


class ClipIn(RequestBody):
    recording_id: uuid.UUID
    start_ms: int = Field(ge=0, description="Where the clip starts in the call, in ms.")
    end_ms: int = Field(ge=1, description=f"Where it ends; at most {MAX_CLIP_MS} ms after start.")
    title: str = Field(min_length=1, max_length=MAX_TITLE)
    purpose: str = Field(min_length=1, max_length=MAX_PURPOSE)
    agent_only: bool = Field(
        default=False,
        description="Keep the agent's channel alone (split-leg calls only): such a clip may be "
        "kept beyond its call.",
    )


class KeepIn(RequestBody):
    until: dt.datetime = Field(description="Keep the clip until then (with its time zone).")
    reason: str = Field(min_length=1, max_length=MAX_REASON)


class ClipOut(BaseModel):
    id: uuid.UUID
    recording_id: uuid.UUID
    agent: str | None
    start_ms: int
    end_ms: int
    duration_ms: int
    title: str
    purpose: str
    agent_only: bool
    agent_channel: str | None
    channels: int
    format: str
    size_bytes: int
    sha256: str
    encrypted: bool
    retain_until: dt.datetime = Field(description="The call's retention: the clip goes with it.")
    kept_until: dt.datetime | None = Field(description="A decision keeping it longer, if any.")
    kept_reason: str | None
    kept_by: str | None
    kept_at: dt.datetime | None
    created_by: str
    created_at: dt.datetime


class ClipListOut(BaseModel):
    items: list[ClipOut]


@router.post(
    "",
    response_model=ClipOut,
    status_code=201,
    responses={**_ERRORS, 404: {"model": ErrorOut, "description": "No such recording."}},
)
def clips_create(
    body: ClipIn, runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep
) -> dict[str, Any]:
    """Cut a clip out of a call into the library (audited, purpose training)."""
    clip = create_clip(
        runtime,
        body.recording_id,
        start_ms=body.start_ms,
        end_ms=body.end_ms,
        title=body.title,
        purpose=body.purpose,
        agent_only=body.agent_only,
        actor=Actor.staff(principal, client),
    )
    return clip_dict(clip)


@router.get("", response_model=ClipListOut, responses=_ERRORS)
def clips_list(runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep) -> dict[str, Any]:
    """The library: every clip that may still be served, newest first."""
    clips = list_clips(runtime, actor=Actor.staff(principal, client))
    return {"items": [clip_dict(clip) for clip in clips]}


@router.get("/{clip_id}", response_model=ClipOut, responses=_CLIP)
def clips_get(
    clip_id: uuid.UUID, runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep
) -> dict[str, Any]:
    """One clip."""
    return clip_dict(get_clip(runtime, clip_id, actor=Actor.staff(principal, client)))


def _chunks(audio: ClipAudio) -> Iterator[bytes]:
    try:
        yield from audio.reader.iter_chunks()
    finally:
        audio.reader.close()


@router.get(
    "/{clip_id}/audio",
    responses={**_CLIP, 200: {"content": {CLIP_CONTENT_TYPE: {}}, "description": "Ogg Opus."}},
)
def clips_audio(
    clip_id: uuid.UUID, runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep
) -> StreamingResponse:
    """The clip's audio (Ogg Opus), played for training (audited)."""
    audio = open_clip_audio(runtime, clip_id, actor=Actor.staff(principal, client))
    headers = {
        "Cache-Control": "private, no-store",
        "Content-Length": str(audio.clip.size_bytes),
        "Content-Disposition": f'inline; filename="{audio.clip.id}.ogg"',
    }
    return StreamingResponse(_chunks(audio), media_type=CLIP_CONTENT_TYPE, headers=headers)


@router.post(
    "/{clip_id}/keep",
    response_model=ClipOut,
    responses={
        **_CLIP,
        409: {"model": ErrorOut, "description": "The clip holds the customer's voice."},
    },
)
def clips_keep(
    clip_id: uuid.UUID,
    body: KeepIn,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    client: ClientDep,
) -> dict[str, Any]:
    """Keep an agent-only clip beyond its call: a recorded decision (until, reason), audited."""
    actor = Actor.staff(principal, client)
    return clip_dict(keep_clip(runtime, clip_id, until=body.until, reason=body.reason, actor=actor))


@router.delete("/{clip_id}", status_code=204, responses=_CLIP)
def clips_delete(
    clip_id: uuid.UUID, runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep
) -> Response:
    """Delete a clip from the library (its audio and its record), audited."""
    delete_clip(runtime, clip_id, actor=Actor.staff(principal, client))
    return Response(status_code=204)
