"""A property of QA notes, over random small archives on both catalogues.

Whatever the archive holds (calls objected to or restricted, on the call or
on its customer, deleting or past their retention, of any length) and
wherever a trainer tries to write: a note is written exactly when the call
is one a QA trainer may know of and the moment is within it; the notes a
trainer reads are their own and the shared ones, of such calls only; and
once a call is objected to or restricted, none of its notes is read again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recarchive.access.models import Role
from recarchive.catalogue.models import RecordingStatus
from recarchive.catalogue.restrictions import RestrictionKind
from recarchive.errors import InvalidInputError, NotFoundError
from recarchive.qa.notes import add_note, list_notes
from recarchive.runtime import Runtime
from tests.actors import staff
from tests.api_fixtures import build_runtime, close_runtime
from tests.qa_fixtures import add_call, exclude

TRAINERS = [staff("notes-a", Role.QA_TRAINER), staff("notes-b", Role.QA_TRAINER)]
EXCLUSIONS = [None, RestrictionKind.OBJECTION, RestrictionKind.RESTRICTION]


@dataclasses.dataclass(frozen=True)
class Call:
    seconds: int
    deleting: bool
    expired: bool
    customer: int | None
    excluded: RestrictionKind | None


@dataclasses.dataclass(frozen=True)
class Attempt:
    call: int
    offset_ms: int
    author: int
    shared: bool


calls = st.builds(
    Call,
    seconds=st.sampled_from([1, 30, 600]),
    deleting=st.booleans(),
    expired=st.booleans(),
    customer=st.sampled_from([None, 0, 1]),
    excluded=st.sampled_from(EXCLUSIONS),
)
attempts = st.builds(
    Attempt,
    call=st.integers(0, 7),
    offset_ms=st.sampled_from([0, 999, 1000, 1001, 30_000, 600_000, 600_001]),
    author=st.integers(0, 1),
    shared=st.booleans(),
)


@pytest.fixture(scope="module")
def runtime(catalogue_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    runtime = build_runtime(catalogue_url, Path(tmp_path_factory.mktemp("qa-notes-property")))
    yield runtime
    close_runtime(runtime)


def _store(runtime: Runtime, call: Call, customers: list[str]) -> uuid.UUID:
    recording_id = add_call(
        runtime,
        agent="agent-n",
        seconds=call.seconds,
        status=RecordingStatus.DELETING if call.deleting else RecordingStatus.ACTIVE,
        retain_until=dt.datetime(2026, 10, 1, tzinfo=dt.UTC) if call.expired else None,
        customer_id=customers[call.customer] if call.customer is not None else None,
    )
    if call.excluded is not None:
        exclude(runtime, call.excluded, recording_id=recording_id)
    return recording_id


@settings(
    max_examples=20,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    archive=st.lists(calls, min_size=1, max_size=8),
    tries=st.lists(attempts, max_size=12),
    excluded_customers=st.dictionaries(st.integers(0, 1), st.sampled_from(EXCLUSIONS[1:])),
    later=st.sampled_from(EXCLUSIONS[1:]),
)
def test_notes_only_on_visible_calls_and_only_their_readers_see_them(
    runtime: Runtime,
    archive: list[Call],
    tries: list[Attempt],
    excluded_customers: dict[int, RestrictionKind],
    later: RestrictionKind,
) -> None:
    customers = [f"C-notes-{uuid.uuid4().hex[:10]}-{n}" for n in range(2)]
    stored = [(call, _store(runtime, call, customers)) for call in archive]
    for number, kind in excluded_customers.items():
        exclude(runtime, kind, customer_id=customers[number])

    def visible(call: Call) -> bool:
        return (
            not call.deleting
            and not call.expired
            and call.excluded is None
            and call.customer not in excluded_customers
        )

    written: dict[uuid.UUID, list[tuple[int, int, bool]]] = {}
    for attempt in tries:
        call, recording_id = stored[attempt.call % len(stored)]
        author = TRAINERS[attempt.author]
        try:
            add_note(
                runtime,
                recording_id,
                offset_ms=attempt.offset_ms,
                text="moment",
                visibility="shared" if attempt.shared else "private",
                actor=author,
            )
        except NotFoundError:
            assert not visible(call)
            continue
        except InvalidInputError:
            assert visible(call)
            assert attempt.offset_ms > call.seconds * 1000
            continue
        assert visible(call)
        assert attempt.offset_ms <= call.seconds * 1000
        written.setdefault(recording_id, []).append(
            (attempt.offset_ms, attempt.author, attempt.shared)
        )

    for call, recording_id in stored:
        for reader, trainer in enumerate(TRAINERS):
            if not visible(call):
                with pytest.raises(NotFoundError):
                    list_notes(runtime, recording_id, actor=trainer)
                continue
            read = list_notes(runtime, recording_id, actor=trainer)
            expected = sorted(
                offset
                for offset, author, shared in written.get(recording_id, [])
                if shared or author == reader
            )
            assert [note.offset_ms for note in read] == expected
            assert all(note.mine == (note.author == trainer.name) for note in read)

    for recording_id in written:
        exclude(runtime, later, recording_id=recording_id)
        for trainer in TRAINERS:
            with pytest.raises(NotFoundError):
                list_notes(runtime, recording_id, actor=trainer)
