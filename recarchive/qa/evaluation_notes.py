"""Notes that belong to an evaluation: they stay with it when the call and its notes are gone.

A timeline note (:mod:`recarchive.qa.notes`) goes with its recording. A
trainer who bases an evaluation on some of them attaches them to it
(:func:`attach_notes`): each is copied, as it reads at that moment, into
``qa_evaluation_notes``, which is deleted with the evaluation after
``qa.keep_evaluations_years`` (docs/privacy.md). The evaluation shows its
notes to the trainers and to the agent it is about; a later change to the
live note does not change the evaluation's copy (attach it again to take the
new text), and :func:`detach_note` removes a copy.

Rules: only a QA trainer (``qa.evaluate``) attaches, only notes of the
evaluation's own call, only notes they may read (their own or shared ones),
and only while the call is one QA may use (:func:`recarchive.qa.calls.usable_call`):
an unknown note, another's private note or a note of another call is "no
note", saying nothing of whether it exists. Audited ``qa.evaluation.notes``
(ids and counts, never the text).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from recarchive.access.actors import Actor
from recarchive.access.audit import append_event
from recarchive.access.policy import Action
from recarchive.catalogue.database import transaction, utcnow
from recarchive.errors import InvalidInputError, NotFoundError
from recarchive.lookup.views import NotFound as RecordingNotFound
from recarchive.parts import Sessions
from recarchive.qa.calls import usable_call
from recarchive.qa.models import Evaluation, EvaluationNote, Note, NoteVisibility

__all__ = [
    "MAX_ATTACH",
    "EvaluationNoteNotFound",
    "attach_notes",
    "detach_note",
    "notes_by_evaluation",
    "notes_of",
]

#: The most notes one request attaches.
MAX_ATTACH = 200


class EvaluationNoteNotFound(NotFoundError):
    """no such evaluation, or no such note on its call"""


def note_dict(note: EvaluationNote) -> dict[str, Any]:
    return {
        "note_id": str(note.note_id),
        "offset_ms": note.offset_ms,
        "text": note.text,
        "author": note.author,
        "attached_by": note.attached_by,
        "attached_at": note.attached_at.isoformat(),
    }


def notes_of(session: Session, evaluation_id: uuid.UUID) -> list[dict[str, Any]]:
    """The evaluation's notes, by offset."""
    return notes_by_evaluation(session, [evaluation_id]).get(evaluation_id, [])


def notes_by_evaluation(
    session: Session, evaluation_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """The notes of several evaluations at once, each list by offset."""
    ids = list(evaluation_ids)
    found: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for start in range(0, len(ids), 500):
        rows = session.scalars(
            select(EvaluationNote)
            .where(EvaluationNote.evaluation_id.in_(ids[start : start + 500]))
            .order_by(EvaluationNote.offset_ms, EvaluationNote.attached_at, EvaluationNote.id)
        )
        for row in rows:
            found.setdefault(row.evaluation_id, []).append(note_dict(row))
    return found


def _evaluation(session: Session, evaluation_id: uuid.UUID) -> Evaluation:
    evaluation = session.scalar(
        select(Evaluation).where(Evaluation.id == evaluation_id).with_for_update()
    )
    if evaluation is None:
        raise EvaluationNoteNotFound(f"no evaluation {evaluation_id}")
    return evaluation


def _audit(session: Session, actor: Actor, evaluation: Evaluation, details: dict[str, Any]) -> None:
    append_event(
        session,
        actor=actor.name,
        actor_role=actor.role_name,
        action="qa.evaluation.notes",
        recording_id=evaluation.recording_id,
        client_addr=actor.client_addr,
        details={"evaluation_id": str(evaluation.id), **details},
    )


def attach_notes(
    runtime: Sessions, evaluation_id: uuid.UUID, note_ids: list[uuid.UUID], *, actor: Actor
) -> list[dict[str, Any]]:
    """Copy the notes into the evaluation (a note attached before is copied anew); its notes."""
    actor.require(Action.QA_EVALUATE)
    wanted = list(dict.fromkeys(note_ids))
    if not wanted:
        raise InvalidInputError("name at least one note to attach")
    if len(wanted) > MAX_ATTACH:
        raise InvalidInputError(f"at most {MAX_ATTACH} notes at a time, got {len(wanted)}")
    with transaction(runtime.sessions) as session:
        evaluation = _evaluation(session, evaluation_id)
        if usable_call(session, evaluation.recording_id, utcnow()) is None:
            raise RecordingNotFound(f"no recording {evaluation.recording_id}")
        notes = {
            note.id: note
            for note in session.scalars(
                select(Note).where(
                    Note.id.in_(wanted),
                    Note.recording_id == evaluation.recording_id,
                    or_(Note.visibility == NoteVisibility.SHARED, Note.author == actor.name),
                )
            )
        }
        missing = [str(i) for i in wanted if i not in notes]
        if missing:
            raise EvaluationNoteNotFound(f"no note {missing[0]} on this evaluation's call")
        session.execute(
            delete(EvaluationNote).where(
                EvaluationNote.evaluation_id == evaluation.id,
                EvaluationNote.note_id.in_(wanted),
            )
        )
        now = utcnow()
        for note_id in wanted:
            note = notes[note_id]
            session.add(
                EvaluationNote(
                    evaluation_id=evaluation.id,
                    note_id=note.id,
                    author=note.author,
                    offset_ms=note.offset_ms,
                    text=note.text,
                    attached_by=actor.name,
                    attached_at=now,
                )
            )
        session.flush()
        _audit(session, actor, evaluation, {"attached": len(wanted)})
        return notes_of(session, evaluation.id)


def detach_note(
    runtime: Sessions, evaluation_id: uuid.UUID, note_id: uuid.UUID, *, actor: Actor
) -> list[dict[str, Any]]:
    """Remove the evaluation's copy of a note (the live note, if any, stays); its notes."""
    actor.require(Action.QA_EVALUATE)
    with transaction(runtime.sessions) as session:
        evaluation = _evaluation(session, evaluation_id)
        result = session.execute(
            delete(EvaluationNote).where(
                EvaluationNote.evaluation_id == evaluation.id, EvaluationNote.note_id == note_id
            )
        )
        if not getattr(result, "rowcount", 0):
            raise EvaluationNoteNotFound(f"no note {note_id} on evaluation {evaluation_id}")
        _audit(session, actor, evaluation, {"detached": 1})
        return notes_of(session, evaluation.id)
