"""Scorecard forms and evaluations on both catalogues: versions, visibility, roles, keeping.

One catalogue per module and backend for the use cases; the tests that run
expiry or the nightly job get a fresh catalogue of their own.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import threading
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
from recarchive.catalogue.restrictions import RestrictionKind
from recarchive.lookup.views import NotFound
from recarchive.qa.evaluations import (
    EvaluationNotFound,
    FormVersionNotFound,
    create_evaluation,
    get_evaluation,
    list_evaluations,
    revise_evaluation,
)
from recarchive.qa.keeping import purge_evaluations
from recarchive.qa.models import Evaluation, EvaluationVersion
from recarchive.qa.scorecards import FormNameTaken, create_form, get_form, revise_form
from recarchive.qa.scoring import AnswerError, FormError
from recarchive.retention.expiry import expire_recordings
from recarchive.retention.tasks import run_nightly_if_due
from recarchive.runtime import Runtime
from tests.actors import staff
from tests.api_fixtures import add_recording, build_runtime, close_runtime
from tests.qa_fixtures import add_call, exclude

TRAINER = staff("score-trainer", Role.QA_TRAINER)
OTHER = staff("score-trainer-2", Role.QA_TRAINER)
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "qa-form.json"
DAY = dt.timedelta(days=1)


def example() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    data.pop("name")
    return data


ANSWERS = {
    "greeting": "yes",
    "identity": "yes",
    "understood": 4,
    "accurate": "yes",
    "hold": "na",
    "summary": "no",
    "remarks": "Clear and friendly.",
}


@pytest.fixture(scope="module")
def runtime(catalogue_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    runtime = build_runtime(catalogue_url, Path(tmp_path_factory.mktemp("scores")))
    yield runtime
    close_runtime(runtime)


def new_form(runtime: Runtime) -> Any:
    return create_form(
        runtime, name=f"form-{uuid.uuid4().hex[:8]}", definition=example(), actor=TRAINER
    )


def actions(runtime: Runtime, evaluation_id: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
    with runtime.sessions() as session:
        events = session.scalars(select(AuditEvent).order_by(AuditEvent.seq))
        return [
            (e.action, dict(e.details or {}))
            for e in events
            if (e.details or {}).get("evaluation_id") == str(evaluation_id)
        ]


def test_a_form_version_never_changes_and_an_evaluation_keeps_its_own(runtime: Runtime) -> None:
    form = new_form(runtime)
    first = form.versions[0]
    call = add_call(runtime, agent="agent-7", queue="service")
    evaluation = create_evaluation(
        runtime, recording_id=call, form_version_id=first.id, answers=ANSWERS, actor=TRAINER
    )
    changed = example()
    changed["sections"][0]["questions"][0]["weight"] = 5
    changed["sections"][2]["questions"].append({"id": "new", "text": "New?", "kind": "yes_no_na"})
    revised = revise_form(runtime, form.id, definition=changed, actor=OTHER)
    assert [v.version for v in revised.versions] == [1, 2]
    assert revised.versions[0].definition == first.definition  # version 1 as it was
    assert revised.versions[1].id != first.id
    # The evaluation is still scored with version 1: "new" is no question of it.
    with pytest.raises(AnswerError, match="'new' is not in this form"):
        revise_evaluation(
            runtime, evaluation.evaluation.id, answers={**ANSWERS, "new": "yes"}, actor=TRAINER
        )
    again = revise_evaluation(runtime, evaluation.evaluation.id, answers=ANSWERS, actor=TRAINER)
    assert again.as_dict()["form"] == {
        "id": str(form.id),
        "name": form.name,
        "version": 1,
        "version_id": str(first.id),
    }
    assert again.as_dict()["score"] == 82.5
    with pytest.raises(FormNameTaken):
        create_form(runtime, name=form.name, definition=example(), actor=TRAINER)
    broken = example()
    broken["sections"][1]["questions"][0]["id"] = "greeting"
    with pytest.raises(FormError, match="'greeting' is used twice"):
        revise_form(runtime, form.id, definition=broken, actor=TRAINER)
    assert len(get_form(runtime, form.id, actor=TRAINER).versions) == 2


def test_a_change_is_a_new_version_and_the_old_one_stays_readable(runtime: Runtime) -> None:
    form = new_form(runtime)
    call = add_call(runtime, agent="agent-8", queue="service")
    made = create_evaluation(
        runtime,
        recording_id=call,
        form_version_id=form.versions[0].id,
        answers=ANSWERS,
        actor=TRAINER,
    )
    evaluation_id = made.evaluation.id
    data = made.as_dict()
    assert (data["status"], data["version"], data["score"]) == ("draft", 1, 82.5)
    assert (data["agent"], data["queue"]) == ("agent-8", "service")
    changed = revise_evaluation(
        runtime, evaluation_id, answers={**ANSWERS, "accurate": "no"}, submit=True, actor=OTHER
    )
    data = changed.as_dict()
    assert (data["status"], data["version"], data["score"]) == ("submitted", 2, 30.0)
    assert data["critical_failed"] == ["accurate"]
    assert (data["created_by"], data["updated_by"]) == (TRAINER.name, OTHER.name)
    versions = get_evaluation(runtime, evaluation_id, actor=TRAINER).versions()
    assert [(v["version"], v["status"], v["score"]) for v in versions] == [
        (1, "draft", 82.5),
        (2, "submitted", 30.0),
    ]
    assert versions[0]["superseded"] is True
    assert versions[0]["superseded_by"] == OTHER.name
    assert versions[0]["superseded_at"] is not None
    assert versions[0]["answers"]["accurate"] == "yes"
    assert versions[1]["superseded"] is False
    # Still submitted after a further change, without a second submit entry.
    third = revise_evaluation(runtime, evaluation_id, answers=ANSWERS, actor=TRAINER).as_dict()
    assert (third["status"], third["version"]) == ("submitted", 3)
    audit = actions(runtime, evaluation_id)
    assert [a for a, _ in audit if a != "qa.evaluation.view"] == [
        "qa.evaluation.save",
        "qa.evaluation.save",
        "qa.evaluation.submit",
        "qa.evaluation.save",
    ]
    assert "friendly" not in str(audit)  # no free text in the audit log
    assert all("score" not in details for _, details in audit)
    listed = list_evaluations(runtime, recording_id=call, actor=TRAINER)
    assert [v.evaluation.id for v in listed] == [evaluation_id]
    by_agent = list_evaluations(runtime, agent="agent-8", actor=TRAINER)
    assert evaluation_id in [v.evaluation.id for v in by_agent]


@pytest.mark.parametrize("kind", [RestrictionKind.OBJECTION, RestrictionKind.RESTRICTION])
def test_an_objected_or_restricted_call_is_never_scored(
    runtime: Runtime, kind: RestrictionKind
) -> None:
    form = new_form(runtime)
    version_id = form.versions[0].id
    customer = f"C-{uuid.uuid4().hex[:6]}"
    hidden = add_call(runtime, agent="agent-9", customer_id=customer)
    exclude(runtime, kind, customer_id=customer)
    with pytest.raises(NotFound) as refused:
        create_evaluation(
            runtime, recording_id=hidden, form_version_id=version_id, answers=ANSWERS, actor=TRAINER
        )
    unknown = uuid.uuid4()
    with pytest.raises(NotFound) as nobody:
        create_evaluation(
            runtime,
            recording_id=unknown,
            form_version_id=version_id,
            answers=ANSWERS,
            actor=TRAINER,
        )
    # The same answer as for an id nobody has: the refusal says nothing of the call.
    assert str(refused.value).replace(str(hidden), "X") == str(nobody.value).replace(
        str(unknown), "X"
    )
    # A call excluded after it was scored: the evaluation stays, never scored again.
    later = add_call(runtime, agent="agent-9")
    made = create_evaluation(
        runtime, recording_id=later, form_version_id=version_id, answers=ANSWERS, actor=TRAINER
    )
    exclude(runtime, kind, recording_id=later)
    with pytest.raises(NotFound):
        revise_evaluation(runtime, made.evaluation.id, answers=ANSWERS, actor=TRAINER)
    assert get_evaluation(runtime, made.evaluation.id, actor=TRAINER).as_dict()["version"] == 1


def test_an_expired_call_is_not_scored(runtime: Runtime) -> None:
    form = new_form(runtime)
    gone = add_call(runtime, agent="agent-9", retain_until=utcnow() - DAY)
    with pytest.raises(NotFound):
        create_evaluation(
            runtime,
            recording_id=gone,
            form_version_id=form.versions[0].id,
            answers=ANSWERS,
            actor=TRAINER,
        )


@pytest.mark.parametrize("role", [r for r in Role if r is not Role.QA_TRAINER])
def test_only_qa_trainers_keep_scorecards(runtime: Runtime, role: Role) -> None:
    someone = staff(f"someone-{role.value}", role)
    form = new_form(runtime)
    call = add_call(runtime, agent="agent-1")
    version_id = form.versions[0].id
    made = create_evaluation(
        runtime, recording_id=call, form_version_id=version_id, answers=ANSWERS, actor=TRAINER
    )
    attempts = [
        lambda: create_form(runtime, name="nope", definition=example(), actor=someone),
        lambda: revise_form(runtime, form.id, definition=example(), actor=someone),
        lambda: get_form(runtime, form.id, actor=someone),
        lambda: create_evaluation(
            runtime,
            recording_id=call,
            form_version_id=form.versions[0].id,
            answers=ANSWERS,
            actor=someone,
        ),
        lambda: revise_evaluation(runtime, made.evaluation.id, answers=ANSWERS, actor=someone),
        lambda: get_evaluation(runtime, made.evaluation.id, actor=someone),
        lambda: list_evaluations(runtime, actor=someone),
    ]
    for attempt in attempts:
        with pytest.raises(Forbidden):
            attempt()


def test_nasty_answers_are_refused_and_nothing_is_saved(runtime: Runtime) -> None:
    form = new_form(runtime)
    call = add_call(runtime, agent="agent-2")
    version_id = form.versions[0].id
    for bad, named in [
        ({**ANSWERS, "ghost": "yes"}, "'ghost'"),
        ({k: v for k, v in ANSWERS.items() if k != "accurate"}, "'accurate' needs an answer"),
        ({**ANSWERS, "understood": 9}, "'understood' takes a whole number 1 to 5"),
        ({**ANSWERS, "remarks": "x" * 10_000}, "'remarks'"),
        ({str(n): "yes" for n in range(5000)}, "is not in this form"),
    ]:
        with pytest.raises(AnswerError, match=named):
            create_evaluation(
                runtime, recording_id=call, form_version_id=version_id, answers=bad, actor=TRAINER
            )
    with pytest.raises(FormVersionNotFound):
        create_evaluation(
            runtime, recording_id=call, form_version_id=uuid.uuid4(), answers=ANSWERS, actor=TRAINER
        )
    with pytest.raises(EvaluationNotFound):
        revise_evaluation(runtime, uuid.uuid4(), answers=ANSWERS, actor=TRAINER)
    assert list_evaluations(runtime, recording_id=call, actor=TRAINER) == []


@pytest.fixture
def fresh(empty_catalogue_url: str, tmp_path: Path) -> Iterator[Runtime]:
    runtime = build_runtime(empty_catalogue_url, tmp_path)
    yield runtime
    close_runtime(runtime)


def test_an_evaluation_outlives_its_call_and_goes_after_its_keep_period(fresh: Runtime) -> None:
    runtime = fresh
    form = new_form(runtime)
    recording = add_recording(runtime, agent="agent-3", queue="service")
    made = create_evaluation(
        runtime,
        recording_id=recording.id,
        form_version_id=form.versions[0].id,
        answers=ANSWERS,
        submit=True,
        actor=TRAINER,
    )
    evaluation_id = made.evaluation.id
    with transaction(runtime.sessions) as session:
        session.execute(
            update(Recording)
            .where(Recording.id == recording.id)
            .values(retain_until=utcnow() - DAY)
        )
    assert expire_recordings(runtime, now=utcnow()).deleted == 1
    kept = get_evaluation(runtime, evaluation_id, actor=TRAINER).as_dict()
    assert (kept["agent"], kept["queue"], kept["score"]) == ("agent-3", "service", 82.5)
    assert kept["started_at"] == made.as_dict()["started_at"]
    # Kept two years (the default) after its last change; then the nightly job deletes it.
    last = made.evaluation.updated_at
    assert runtime.settings.qa.keep_evaluations_years == 2
    assert purge_evaluations(runtime, now=last + 729 * DAY) == 0
    run = run_nightly_if_due(runtime, now=last + 732 * DAY)
    assert run is not None
    with runtime.sessions() as session:
        assert session.get(Evaluation, evaluation_id) is None
        left = session.scalars(
            select(EvaluationVersion).where(EvaluationVersion.evaluation_id == evaluation_id)
        ).all()
        assert left == []
        deleted = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "qa.evaluation.delete")
        ).all()
        nightly = session.scalars(
            select(AuditEvent.details).where(AuditEvent.action == "nightly.run")
        ).all()
    assert [(e.actor, e.details["evaluation_id"]) for e in deleted] == [
        ("system", str(evaluation_id))
    ]
    assert [d["evaluations_deleted"] for d in nightly] == [1]


def test_revisions_at_once_each_get_a_version_of_their_own(runtime: Runtime) -> None:
    form = new_form(runtime)
    barrier = threading.Barrier(4)

    def revise(weight: int) -> None:
        changed = example()
        changed["sections"][0]["questions"][0]["weight"] = weight
        barrier.wait()
        revise_form(runtime, form.id, definition=changed, actor=TRAINER)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(revise, range(2, 6)))
    revised = get_form(runtime, form.id, actor=TRAINER)
    assert sorted(v.version for v in revised.versions) == [1, 2, 3, 4, 5]
    later = [v.definition for v in revised.versions if v.version > 1]
    assert sorted(d["sections"][0]["questions"][0]["weight"] for d in later) == [2, 3, 4, 5]
