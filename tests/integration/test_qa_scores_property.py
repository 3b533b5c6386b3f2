"""A property of QA scoring, over random small archives on both catalogues.

Whatever the archive holds (calls objected to or restricted, on the call or
on its customer, deleting or past their retention): a call is scored exactly
when it is one a QA trainer may know of; once it is objected to or
restricted, its evaluation is never revised again and no note is attached to
it, while the evaluation already made stays readable.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recarchive.access.models import Role
from recarchive.catalogue.models import RecordingStatus
from recarchive.catalogue.restrictions import RestrictionKind
from recarchive.errors import NotFoundError
from recarchive.qa.evaluation_notes import attach_notes
from recarchive.qa.evaluations import create_evaluation, get_evaluation, revise_evaluation
from recarchive.qa.notes import add_note
from recarchive.qa.scorecards import create_form
from recarchive.runtime import Runtime
from tests.actors import staff
from tests.api_fixtures import build_runtime, close_runtime
from tests.qa_fixtures import add_call, exclude

TRAINER = staff("scores-property", Role.QA_TRAINER)
EXCLUSIONS = [None, RestrictionKind.OBJECTION, RestrictionKind.RESTRICTION]
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "qa-form.json"
ANSWERS = {
    "greeting": "yes",
    "identity": "no",
    "understood": 3,
    "accurate": "yes",
    "hold": "na",
    "summary": "yes",
    "remarks": "ok",
}


@dataclasses.dataclass(frozen=True)
class Call:
    deleting: bool
    expired: bool
    customer: int | None
    excluded: RestrictionKind | None


calls = st.builds(
    Call,
    deleting=st.booleans(),
    expired=st.booleans(),
    customer=st.sampled_from([None, 0, 1]),
    excluded=st.sampled_from(EXCLUSIONS),
)


@pytest.fixture(scope="module")
def runtime(catalogue_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    runtime = build_runtime(catalogue_url, Path(tmp_path_factory.mktemp("qa-scores-property")))
    yield runtime
    close_runtime(runtime)


@pytest.fixture(scope="module")
def form_version_id(runtime: Runtime) -> uuid.UUID:
    definition: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    definition.pop("name")
    form = create_form(runtime, name="property form", definition=definition, actor=TRAINER)
    return form.versions[0].id


@settings(
    max_examples=8,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    archive=st.lists(calls, min_size=1, max_size=6),
    excluded_customers=st.dictionaries(st.integers(0, 1), st.sampled_from(EXCLUSIONS[1:])),
    later=st.sampled_from(EXCLUSIONS[1:]),
)
def test_only_calls_qa_may_know_of_are_scored(
    runtime: Runtime,
    form_version_id: uuid.UUID,
    archive: list[Call],
    excluded_customers: dict[int, RestrictionKind],
    later: RestrictionKind,
) -> None:
    customers = [f"C-scores-{uuid.uuid4().hex[:10]}-{n}" for n in range(2)]
    stored = []
    for call in archive:
        recording_id = add_call(
            runtime,
            agent="agent-s",
            status=RecordingStatus.DELETING if call.deleting else RecordingStatus.ACTIVE,
            retain_until=dt.datetime(2026, 10, 1, tzinfo=dt.UTC) if call.expired else None,
            customer_id=customers[call.customer] if call.customer is not None else None,
        )
        if call.excluded is not None:
            exclude(runtime, call.excluded, recording_id=recording_id)
        stored.append((call, recording_id))
    for number, kind in excluded_customers.items():
        exclude(runtime, kind, customer_id=customers[number])

    scored = []
    for call, recording_id in stored:
        visible = not (
            call.deleting
            or call.expired
            or call.excluded is not None
            or call.customer in excluded_customers
        )
        try:
            view = create_evaluation(
                runtime,
                recording_id=recording_id,
                form_version_id=form_version_id,
                answers=ANSWERS,
                submit=True,
                actor=TRAINER,
            )
        except NotFoundError:
            assert not visible
            continue
        assert visible
        note = add_note(runtime, recording_id, offset_ms=0, text="n", actor=TRAINER)
        scored.append((recording_id, view.evaluation.id, note.id))

    for recording_id, evaluation_id, note_id in scored:
        exclude(runtime, later, recording_id=recording_id)
        with pytest.raises(NotFoundError):
            revise_evaluation(runtime, evaluation_id, answers=ANSWERS, actor=TRAINER)
        with pytest.raises(NotFoundError):
            attach_notes(runtime, evaluation_id, [note_id], actor=TRAINER)
        assert get_evaluation(runtime, evaluation_id, actor=TRAINER).evaluation.id == evaluation_id
