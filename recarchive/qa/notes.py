"""Notes on a call's timeline: a QA trainer marks a moment, privately or for the QA team.

Only QA trainers write and read notes (``qa.note``), and only on a call a QA
trainer may know of at all: never on one restricted or objected to
(:func:`recarchive.privacy.visibility.visible_condition`, the rule of the
QA search). A refusal for such a call is the answer for an unknown one, so
it says nothing of the call's existence. The rule is applied when notes are
read as well as when they are written: the notes of a call objected to
later stay in the catalogue until the call goes, but no one is shown them.

A private note is its author's alone; a shared one every QA trainer sees.
Only its author edits or deletes a note. Each change is audited
(``qa.note.add``, ``qa.note.edit``, ``qa.note.delete``) and so is each
reading (``qa.note.list``), never with the note's text. A note is personal
data about the agent: its row goes with its recording's (the foreign key's
ON DELETE CASCADE), in the transaction that expires or erases the call.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from recarchive.access.actors import Actor
from recarchive.access.audit import append_event
from recarchive.access.policy import Action, Forbidden
from recarchive.catalogue.database import transaction, utcnow
from recarchive.catalogue.models import Recording
from recarchive.errors import InvalidInputError, NotFoundError
from recarchive.lookup.views import NotFound
from recarchive.parts import Sessions
from recarchive.qa.calls import usable_call
from recarchive.qa.models import Note, NoteVisibility

__all__ = [
    "MAX_TEXT_CHARS",
    "NoteInputError",
    "NoteNotFound",
    "NoteView",
    "add_note",
    "delete_note",
    "edit_note",
    "list_notes",
]

#: The longest note, in characters.
MAX_TEXT_CHARS = 2000


class NoteNotFound(NotFoundError):
    """no such note"""


class NoteInputError(InvalidInputError):
    """the note is not valid"""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field


class NotAuthor(Forbidden):
    """only its author may change a note"""


@dataclasses.dataclass(frozen=True)
class NoteView:
    """A note as its readers see it (``mine``: the reader wrote it)."""

    id: uuid.UUID
    recording_id: uuid.UUID
    author: str
    offset_ms: int
    text: str
    visibility: NoteVisibility
    created_at: dt.datetime
    updated_at: dt.datetime
    mine: bool

    @classmethod
    def of(cls, note: Note, reader: str) -> NoteView:
        return cls(
            note.id,
            note.recording_id,
            note.author,
            note.offset_ms,
            note.text,
            note.visibility,
            note.created_at,
            note.updated_at,
            note.author == reader,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "recording_id": str(self.recording_id),
            "author": self.author,
            "offset_ms": self.offset_ms,
            "text": self.text,
            "visibility": self.visibility.value,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "mine": self.mine,
        }


def checked_text(text: str) -> str:
    """The note's text, trimmed, line ends made ``\\n``; :class:`NoteInputError` if not 1 to
    :data:`MAX_TEXT_CHARS` characters, or if it holds a control character other than a newline."""
    cleaned = text.replace("\r\n", "\n").strip()
    if not 1 <= len(cleaned) <= MAX_TEXT_CHARS:
        raise NoteInputError("text", f"must be 1 to {MAX_TEXT_CHARS} characters")
    if any((ord(c) < 32 and c != "\n") or 127 <= ord(c) < 160 for c in cleaned):
        raise NoteInputError("text", "may hold no control characters but newlines")
    return cleaned


def _visibility(value: NoteVisibility | str) -> NoteVisibility:
    try:
        return NoteVisibility(value)
    except ValueError:
        raise NoteInputError("visibility", "must be private or shared") from None


def _check_offset(offset_ms: int, recording: Recording) -> None:
    if not 0 <= offset_ms <= recording.duration_ms:
        raise NoteInputError(
            "offset_ms", f"must be 0 to the call's duration ({recording.duration_ms} ms)"
        )


def _recording(session: Session, recording_id: uuid.UUID) -> Recording:
    """The recording if a QA trainer may know of it; else :class:`NotFound`, as for no call."""
    recording = usable_call(session, recording_id, utcnow())
    if recording is None:
        raise NotFound(f"no recording {recording_id}")
    return recording


def _readable(actor: Actor) -> Any:
    """SQL: the notes ``actor`` may read (shared, or their own)."""
    return or_(Note.visibility == NoteVisibility.SHARED, Note.author == actor.name)


def _own_note(session: Session, note_id: uuid.UUID, actor: Actor) -> tuple[Note, Recording]:
    """A note ``actor`` may change, on a call still visible; :class:`NoteNotFound` for a note
    they may not read (another's private one, or one whose call is hidden or gone)."""
    note = session.scalar(
        select(Note).where(Note.id == note_id, _readable(actor)).with_for_update()
    )
    if note is None:
        raise NoteNotFound(f"no note {note_id}")
    try:
        recording = _recording(session, note.recording_id)
    except NotFound:
        raise NoteNotFound(f"no note {note_id}") from None
    if note.author != actor.name:
        raise NotAuthor(f"note {note_id} is another trainer's: only its author may change it")
    return note, recording


def _audit(session: Session, actor: Actor, action: str, note: Note, **details: Any) -> None:
    append_event(
        session,
        actor=actor.name,
        actor_role=actor.role_name,
        action=action,
        recording_id=note.recording_id,
        client_addr=actor.client_addr,
        details={"note_id": str(note.id), **details},
    )


def add_note(
    runtime: Sessions,
    recording_id: uuid.UUID,
    *,
    offset_ms: int,
    text: str,
    visibility: NoteVisibility | str = NoteVisibility.PRIVATE,
    actor: Actor,
) -> NoteView:
    """A new note by ``actor`` at ``offset_ms`` of the call, audited (``qa.note.add``)."""
    actor.require(Action.QA_NOTE)
    cleaned, kind = checked_text(text), _visibility(visibility)
    try:
        with transaction(runtime.sessions) as session:
            recording = _recording(session, recording_id)
            _check_offset(offset_ms, recording)
            now = utcnow()
            note = Note(
                recording_id=recording_id,
                author=actor.name,
                offset_ms=offset_ms,
                text=cleaned,
                visibility=kind,
                created_at=now,
                updated_at=now,
            )
            session.add(note)
            session.flush()
            _audit(session, actor, "qa.note.add", note, offset_ms=offset_ms, visibility=kind.value)
            view = NoteView.of(note, actor.name)
    except IntegrityError:  # the call was deleted between the check and the insert
        raise NotFound(f"no recording {recording_id}") from None
    return view


def list_notes(runtime: Sessions, recording_id: uuid.UUID, *, actor: Actor) -> list[NoteView]:
    """The notes of a call that ``actor`` may read, by offset; the reading is audited."""
    actor.require(Action.QA_NOTE)
    with transaction(runtime.sessions) as session:
        _recording(session, recording_id)
        notes = list(
            session.scalars(
                select(Note)
                .where(Note.recording_id == recording_id, _readable(actor))
                .order_by(Note.offset_ms, Note.created_at, Note.id)
            )
        )
        append_event(
            session,
            actor=actor.name,
            actor_role=actor.role_name,
            action="qa.note.list",
            recording_id=recording_id,
            client_addr=actor.client_addr,
            details={"notes": len(notes)},
        )
        views = [NoteView.of(note, actor.name) for note in notes]
    return views


def edit_note(
    runtime: Sessions,
    note_id: uuid.UUID,
    *,
    offset_ms: int | None = None,
    text: str | None = None,
    visibility: NoteVisibility | str | None = None,
    actor: Actor,
) -> NoteView:
    """Change the author's own note (what is given), audited (``qa.note.edit``)."""
    actor.require(Action.QA_NOTE)
    cleaned = checked_text(text) if text is not None else None
    kind = _visibility(visibility) if visibility is not None else None
    with transaction(runtime.sessions) as session:
        note, recording = _own_note(session, note_id, actor)
        changed: list[str] = []
        if offset_ms is not None and offset_ms != note.offset_ms:
            _check_offset(offset_ms, recording)
            note.offset_ms = offset_ms
            changed.append("offset_ms")
        if cleaned is not None and cleaned != note.text:
            note.text = cleaned
            changed.append("text")
        if kind is not None and kind is not note.visibility:
            note.visibility = kind
            changed.append("visibility")
        if changed:
            note.updated_at = utcnow()
            _audit(
                session,
                actor,
                "qa.note.edit",
                note,
                changed=changed,
                offset_ms=note.offset_ms,
                visibility=note.visibility.value,
            )
        session.flush()
        view = NoteView.of(note, actor.name)
    return view


def delete_note(runtime: Sessions, note_id: uuid.UUID, *, actor: Actor) -> None:
    """Delete the author's own note, audited (``qa.note.delete``)."""
    actor.require(Action.QA_NOTE)
    with transaction(runtime.sessions) as session:
        note, _recording_row = _own_note(session, note_id, actor)
        _audit(session, actor, "qa.note.delete", note, offset_ms=note.offset_ms)
        session.delete(note)
