"""A property of the training library, over random small archives on both catalogues.

Whatever the archive holds (calls objected to or restricted, by recording or by
customer, deleting or expired): a clip is cut from exactly the calls a QA
trainer may know of, the others are refused as unknown; and once a customer
objects or is restricted (even with no event heard), their clips are never
listed or served again, and the purge deletes them, objects included, and
nothing else.
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
from sqlalchemy import update

from recarchive.access.models import Role
from recarchive.catalogue.database import transaction, utcnow
from recarchive.catalogue.models import Recording, RecordingStatus
from recarchive.catalogue.restrictions import RestrictionKind
from recarchive.lookup.views import NotFound
from recarchive.qa.clip_purge import purge_clips
from recarchive.qa.clips import ClipNotFound, create_clip, get_clip, list_clips
from recarchive.qa.models import Clip
from recarchive.runtime import Runtime
from tests.actors import staff
from tests.api_fixtures import add_recording, build_runtime, close_runtime
from tests.qa_fixtures import exclude

TRAINER = staff("clip-property", Role.QA_TRAINER)
EXCLUSIONS = [None, RestrictionKind.OBJECTION, RestrictionKind.RESTRICTION]


@dataclasses.dataclass(frozen=True)
class Call:
    customer: int | None
    excluded: RestrictionKind | None
    deleting: bool
    expired: bool


calls = st.builds(
    Call,
    customer=st.sampled_from([None, 0, 1, 2]),
    excluded=st.sampled_from(EXCLUSIONS),
    deleting=st.booleans(),
    expired=st.booleans(),
)


@pytest.fixture(scope="module")
def runtime(catalogue_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    runtime = build_runtime(catalogue_url, Path(tmp_path_factory.mktemp("clip-property")))
    yield runtime
    close_runtime(runtime)


def _store(runtime: Runtime, call: Call, customers: list[str]) -> uuid.UUID:
    recording = add_recording(
        runtime,
        seconds=1.5,
        agent="agent-p",
        customer_id=customers[call.customer] if call.customer is not None else None,
        retain_until=utcnow() - dt.timedelta(days=1) if call.expired else None,
    )
    if call.deleting:
        with transaction(runtime.sessions) as session:
            session.execute(
                update(Recording)
                .where(Recording.id == recording.id)
                .values(status=RecordingStatus.DELETING)
            )
    if call.excluded is not None:
        exclude(runtime, call.excluded, recording_id=recording.id)
    return recording.id


@settings(
    max_examples=12,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    archive=st.lists(calls, max_size=8),
    excluded_customers=st.dictionaries(
        st.integers(0, 2), st.sampled_from(EXCLUSIONS[1:]), max_size=2
    ),
    objecting_later=st.integers(min_value=0, max_value=2),
)
def test_only_calls_a_trainer_may_know_of_are_clipped_and_objections_remove_them(
    runtime: Runtime,
    archive: list[Call],
    excluded_customers: dict[int, RestrictionKind],
    objecting_later: int,
) -> None:
    customers = [f"C-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    for index, kind in excluded_customers.items():
        exclude(runtime, kind, customer_id=customers[index])
    ids = [_store(runtime, call, customers) for call in archive]

    def eligible(call: Call) -> bool:
        by_customer = call.customer is not None and call.customer in excluded_customers
        return not (call.excluded or by_customer or call.deleting or call.expired)

    clips: dict[uuid.UUID, tuple[Call, Clip]] = {}
    for call, recording_id in zip(archive, ids, strict=True):
        try:
            clip = create_clip(
                runtime, recording_id, start_ms=0, end_ms=1000, title="t", purpose="p",
                actor=TRAINER,
            )  # fmt: skip
        except NotFound:
            assert not eligible(call)
            continue
        assert eligible(call)
        clips[clip.id] = (call, clip)

    # A customer objects later; no handler hears of it (exclude() publishes nothing).
    exclude(runtime, RestrictionKind.OBJECTION, customer_id=customers[objecting_later])
    listed = {c.id for c in list_clips(runtime, actor=TRAINER)}
    for clip_id, (call, _) in clips.items():
        objected = call.customer == objecting_later
        assert (clip_id in listed) is not objected
        if objected:
            with pytest.raises(ClipNotFound):
                get_clip(runtime, clip_id, actor=TRAINER)
    purge_clips(runtime, cause="test")
    with runtime.sessions() as session:
        for clip_id, (call, clip) in clips.items():
            kept = call.customer != objecting_later
            assert (session.get(Clip, clip_id) is not None) is kept
            assert runtime.store.exists(clip.object_key) is kept
