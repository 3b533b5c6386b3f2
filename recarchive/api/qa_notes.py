"""QA trainers' notes on a call's timeline: ``/api/v1/recordings/{id}/notes`` and
``/api/v1/qa/notes/{note_id}``; the notes that belong to an evaluation:
``/api/v1/qa/evaluations/{id}/notes``.

The routes translate; :mod:`recarchive.qa.notes` decides who may, which
calls take notes, who reads which note, and audits. The web player's
session cookie works these routes for every method (:data:`recarchive.api.
auth.COOKIE_WRITES`), after the Origin check.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from recarchive.access.actors import Actor
from recarchive.api.deps import ClientDep, PrincipalDep, RuntimeDep
from recarchive.api.schemas import COMMON_ERRORS, ErrorOut, RequestBody
from recarchive.qa.evaluation_notes import MAX_ATTACH, attach_notes, detach_note
from recarchive.qa.notes import MAX_TEXT_CHARS, add_note, delete_note, edit_note, list_notes

router = APIRouter(tags=["qa"])

#: The longest offset a body may give (a day, in ms); the call's duration decides.
_MAX_OFFSET_MS = 86_400_000
#: Room for line ends sent as CRLF: the text is checked again once they are made LF.
_MAX_BODY_TEXT = 2 * MAX_TEXT_CHARS

_RECORDING: dict[int | str, dict[str, Any]] = {
    **COMMON_ERRORS,
    403: {"model": ErrorOut, "description": "Only QA trainers write and read notes."},
    404: {
        "model": ErrorOut,
        "description": "No such recording, or not one a QA trainer may see (the same answer).",
    },
}
_NOTE: dict[int | str, dict[str, Any]] = {
    **COMMON_ERRORS,
    403: {
        "model": ErrorOut,
        "description": "Only QA trainers use notes; only a note's author changes it.",
    },
    404: {"model": ErrorOut, "description": "No such note that the caller may read."},
}


class NoteIn(RequestBody):
    offset_ms: int = Field(ge=0, le=_MAX_OFFSET_MS, description="From the call's start.")
    text: str = Field(min_length=1, max_length=_MAX_BODY_TEXT, description="1 to 2000 characters.")
    visibility: Literal["private", "shared"] = Field(
        default="private", description="private: the author alone; shared: every QA trainer."
    )


class NoteChange(RequestBody):
    """What to change; what is left out stays."""

    offset_ms: int | None = Field(default=None, ge=0, le=_MAX_OFFSET_MS)
    text: str | None = Field(default=None, min_length=1, max_length=_MAX_BODY_TEXT)
    visibility: Literal["private", "shared"] | None = None


class NoteOut(BaseModel):
    id: uuid.UUID
    recording_id: uuid.UUID
    author: str
    offset_ms: int
    text: str
    visibility: str
    created_at: dt.datetime
    updated_at: dt.datetime
    mine: bool = Field(description="True: the caller wrote it (and may change it).")


class NoteListOut(BaseModel):
    items: list[NoteOut]


class EvaluationNoteOut(BaseModel):
    """A note's copy kept by an evaluation (it outlives the call)."""

    note_id: uuid.UUID
    offset_ms: int
    text: str
    author: str
    attached_by: str
    attached_at: dt.datetime


class EvaluationNotesOut(BaseModel):
    evaluation_id: uuid.UUID
    items: list[EvaluationNoteOut]


class AttachIn(RequestBody):
    note_ids: list[uuid.UUID] = Field(
        min_length=1, max_length=MAX_ATTACH, description="Notes of the evaluation's call."
    )


_EVALUATION_NOTES: dict[int | str, dict[str, Any]] = {
    **COMMON_ERRORS,
    403: {"model": ErrorOut, "description": "Only QA trainers attach notes to evaluations."},
    404: {
        "model": ErrorOut,
        "description": "No such evaluation, or no such note on its call that the caller may "
        "read, or the call is not one a QA trainer may use.",
    },
}


@router.get(
    "/api/v1/recordings/{recording_id}/notes", response_model=NoteListOut, responses=_RECORDING
)
def notes_list(
    recording_id: uuid.UUID, runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep
) -> dict[str, Any]:
    """The call's notes the caller may read (their own, and shared ones), by offset."""
    notes = list_notes(runtime, recording_id, actor=Actor.staff(principal, client))
    return {"items": [note.as_dict() for note in notes]}


@router.post(
    "/api/v1/recordings/{recording_id}/notes",
    response_model=NoteOut,
    status_code=201,
    responses=_RECORDING,
)
def notes_add(
    recording_id: uuid.UUID,
    body: NoteIn,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    client: ClientDep,
) -> dict[str, Any]:
    """Write a note at a moment of the call (private unless shared), audited."""
    note = add_note(
        runtime,
        recording_id,
        offset_ms=body.offset_ms,
        text=body.text,
        visibility=body.visibility,
        actor=Actor.staff(principal, client),
    )
    return note.as_dict()


@router.patch("/api/v1/qa/notes/{note_id}", response_model=NoteOut, responses=_NOTE)
def notes_edit(
    note_id: uuid.UUID,
    body: NoteChange,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    client: ClientDep,
) -> dict[str, Any]:
    """Change one's own note: its moment, text or visibility, audited."""
    note = edit_note(
        runtime,
        note_id,
        offset_ms=body.offset_ms,
        text=body.text,
        visibility=body.visibility,
        actor=Actor.staff(principal, client),
    )
    return note.as_dict()


@router.delete("/api/v1/qa/notes/{note_id}", status_code=204, responses=_NOTE)
def notes_delete(
    note_id: uuid.UUID, runtime: RuntimeDep, principal: PrincipalDep, client: ClientDep
) -> Response:
    """Delete one's own note, audited."""
    delete_note(runtime, note_id, actor=Actor.staff(principal, client))
    return Response(status_code=204)


@router.post(
    "/api/v1/qa/evaluations/{evaluation_id}/notes",
    response_model=EvaluationNotesOut,
    responses=_EVALUATION_NOTES,
)
def evaluation_notes_attach(
    evaluation_id: uuid.UUID,
    body: AttachIn,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    client: ClientDep,
) -> dict[str, Any]:
    """Attach notes of the call to the evaluation: copied, they stay with it after the call."""
    items = attach_notes(
        runtime, evaluation_id, body.note_ids, actor=Actor.staff(principal, client)
    )
    return {"evaluation_id": str(evaluation_id), "items": items}


@router.delete(
    "/api/v1/qa/evaluations/{evaluation_id}/notes/{note_id}",
    response_model=EvaluationNotesOut,
    responses=_EVALUATION_NOTES,
)
def evaluation_notes_detach(
    evaluation_id: uuid.UUID,
    note_id: uuid.UUID,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    client: ClientDep,
) -> dict[str, Any]:
    """Remove a note's copy from the evaluation (the live note stays)."""
    items = detach_note(runtime, evaluation_id, note_id, actor=Actor.staff(principal, client))
    return {"evaluation_id": str(evaluation_id), "items": items}
