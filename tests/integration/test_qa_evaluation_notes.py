"""Notes that belong to an evaluation outlive the call; samples go after their keep period.

Both catalogues: a trainer attaches notes of the evaluated call (their own and
shared ones, never another's private note or a note of another call); the
evaluation keeps copies after the call expires and its live notes go with it;
the audit never holds a note's text. A sample is deleted by the nightly job
``qa.keep_samples_years`` after its period ended.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from recarchive.access.models import AuditEvent, Role
from recarchive.access.policy import Forbidden
from recarchive.catalogue.database import transaction, utcnow
from recarchive.catalogue.models import Recording
from recarchive.qa.evaluation_notes import EvaluationNoteNotFound, attach_notes, detach_note
from recarchive.qa.evaluations import create_evaluation, get_evaluation
from recarchive.qa.keeping import purge_samples
from recarchive.qa.models import Note, Sample, SampleCall
from recarchive.qa.notes import add_note
from recarchive.qa.plans import Criteria, create_plan
from recarchive.qa.sampling import run_sample
from recarchive.qa.scorecards import create_form
from recarchive.retention.expiry import expire_recordings
from recarchive.retention.tasks import run_nightly_if_due
from recarchive.runtime import Runtime
from tests.actors import staff
from tests.api_fixtures import add_recording, build_runtime, close_runtime
from tests.qa_fixtures import add_call

TRAINER = staff("enote-trainer", Role.QA_TRAINER)
OTHER = staff("enote-trainer-2", Role.QA_TRAINER)
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "qa-form.json"
DAY = dt.timedelta(days=1)
SECRET = "the agent sounded tired"
ANSWERS = {
    "greeting": "yes",
    "identity": "yes",
    "understood": 4,
    "accurate": "yes",
    "hold": "na",
    "summary": "no",
    "remarks": "Clear.",
}


@pytest.fixture
def fresh(empty_catalogue_url: str, tmp_path: Path) -> Iterator[Runtime]:
    runtime = build_runtime(empty_catalogue_url, tmp_path)
    yield runtime
    close_runtime(runtime)


def evaluate(runtime: Runtime, recording_id: uuid.UUID) -> uuid.UUID:
    definition: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    definition.pop("name")
    form = create_form(
        runtime, name=f"form-{uuid.uuid4().hex[:6]}", definition=definition, actor=TRAINER
    )
    view = create_evaluation(
        runtime,
        recording_id=recording_id,
        form_version_id=form.versions[0].id,
        answers=ANSWERS,
        submit=True,
        actor=TRAINER,
    )
    return view.evaluation.id


def test_attached_notes_stay_with_the_evaluation_after_the_call(fresh: Runtime) -> None:
    runtime = fresh
    recording = add_recording(runtime, agent="agent-5", seconds=60)
    other_call = add_recording(runtime, agent="agent-5", seconds=60)
    evaluation_id = evaluate(runtime, recording.id)
    mine = add_note(runtime, recording.id, offset_ms=1500, text=SECRET, actor=TRAINER)
    shared = add_note(
        runtime, recording.id, offset_ms=500, text="good", visibility="shared", actor=OTHER
    )
    private = add_note(runtime, recording.id, offset_ms=900, text="mine only", actor=OTHER)
    elsewhere = add_note(runtime, other_call.id, offset_ms=100, text="x", actor=TRAINER)

    for refused in (private.id, elsewhere.id, uuid.uuid4()):
        with pytest.raises(EvaluationNoteNotFound):
            attach_notes(runtime, evaluation_id, [mine.id, refused], actor=TRAINER)
    with pytest.raises(EvaluationNoteNotFound):
        attach_notes(runtime, uuid.uuid4(), [mine.id], actor=TRAINER)
    with pytest.raises(Forbidden):
        attach_notes(runtime, evaluation_id, [mine.id], actor=staff("h", Role.DISPUTE_HANDLER))
    attached = attach_notes(runtime, evaluation_id, [mine.id, shared.id, mine.id], actor=TRAINER)
    assert [(n["offset_ms"], n["author"]) for n in attached] == [
        (500, OTHER.name),
        (1500, TRAINER.name),
    ]

    with transaction(runtime.sessions) as session:
        session.execute(
            update(Recording)
            .where(Recording.id == recording.id)
            .values(retain_until=utcnow() - DAY)
        )
    assert expire_recordings(runtime, now=utcnow()).deleted >= 1
    with runtime.sessions() as session:
        assert session.scalars(select(Note).where(Note.recording_id == recording.id)).all() == []
    kept = get_evaluation(runtime, evaluation_id, actor=TRAINER).as_dict()
    assert [n["text"] for n in kept["notes"]] == ["good", SECRET]
    # The call is gone: nothing more is attached, but a copy can still be removed.
    with pytest.raises(Exception, match="no recording"):
        attach_notes(runtime, evaluation_id, [mine.id], actor=TRAINER)
    left = detach_note(runtime, evaluation_id, shared.id, actor=TRAINER)
    assert [n["note_id"] for n in left] == [str(mine.id)]
    with pytest.raises(EvaluationNoteNotFound):
        detach_note(runtime, evaluation_id, shared.id, actor=TRAINER)
    with runtime.sessions() as session:
        entries = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "qa.evaluation.notes")
        ).all()
    assert [(e.details.get("attached"), e.details.get("detached")) for e in entries] == [
        (2, None),
        (None, 1),
    ]
    assert all(SECRET not in json.dumps(e.details) for e in entries)


def test_a_sample_goes_after_its_keep_period(fresh: Runtime) -> None:
    runtime = fresh
    for agent in ("agent-1", "agent-2"):
        add_call(runtime, agent=agent)
    plan = create_plan(
        runtime,
        name="weekly",
        criteria=Criteria(calls_per_agent=1, period_kind="week"),
        actor=TRAINER,
    )
    sample = run_sample(runtime, plan.id, "2026-W40", actor=TRAINER)
    with runtime.sessions() as session:
        end = session.scalars(select(Sample.period_end)).one()
    assert runtime.settings.qa.keep_samples_years == 2
    assert purge_samples(runtime, now=end + 729 * DAY) == 0
    assert run_nightly_if_due(runtime, now=end + 732 * DAY) is not None
    with runtime.sessions() as session:
        assert session.scalars(select(Sample)).all() == []
        assert session.scalars(select(SampleCall)).all() == []
        [entry] = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "qa.sample.delete")
        ).all()
        nightly = session.scalars(
            select(AuditEvent.details).where(AuditEvent.action == "nightly.run")
        ).all()
    assert entry.details["sample_id"] == str(sample.sample.id)
    assert "agent-1" not in json.dumps(entry.details)
    assert [d["samples_deleted"] for d in nightly] == [1]
