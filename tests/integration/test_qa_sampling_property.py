"""A property of every draw, over random small archives on both catalogues.

Whatever the archive holds (agents, queues, durations, calls outside the
week, expired and deleting calls, objections and restrictions on calls and
on customers): the candidates are exactly the calls a QA trainer may know
of that match the plan, the picks are among them, each agent gets
min(N, their candidates), the draw verifies, and calls objected to or
restricted after the draw are never shown again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from recarchive.access.models import Role
from recarchive.catalogue.models import RecordingStatus
from recarchive.catalogue.restrictions import RestrictionKind
from recarchive.qa.models import SampleCall
from recarchive.qa.plans import Criteria, create_plan
from recarchive.qa.sampling import run_sample, show_sample
from recarchive.qa.verify import verify_sample
from recarchive.runtime import Runtime
from tests.actors import staff
from tests.api_fixtures import build_runtime, close_runtime
from tests.qa_fixtures import IN_WEEK_40, add_call, exclude

TRAINER = staff("qa-property", Role.QA_TRAINER)
EXCLUSIONS = [None, RestrictionKind.OBJECTION, RestrictionKind.RESTRICTION]


@dataclasses.dataclass(frozen=True)
class Call:
    agent: str | None
    other_queue: bool
    seconds: int
    outside_week: bool
    deleting: bool
    expired: bool
    customer: int | None
    excluded: RestrictionKind | None


calls = st.builds(
    Call,
    agent=st.sampled_from([None, "a0", "a1", "a2", "a3"]),
    other_queue=st.booleans(),
    seconds=st.sampled_from([5, 30, 120, 600, 1800]),
    outside_week=st.booleans(),
    deleting=st.booleans(),
    expired=st.booleans(),
    customer=st.sampled_from([None, 0, 1, 2]),
    excluded=st.sampled_from(EXCLUSIONS),
)


@pytest.fixture(scope="module")
def runtime(catalogue_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    runtime = build_runtime(catalogue_url, Path(tmp_path_factory.mktemp("qa-property")))
    yield runtime
    close_runtime(runtime)


def _store(runtime: Runtime, call: Call, queue: str, customers: list[str]) -> uuid.UUID:
    started = IN_WEEK_40 + (dt.timedelta(days=8) if call.outside_week else dt.timedelta())
    recording_id = add_call(
        runtime,
        agent=call.agent,
        queue=f"{queue}-other" if call.other_queue else queue,
        seconds=call.seconds,
        started_at=started,
        status=RecordingStatus.DELETING if call.deleting else RecordingStatus.ACTIVE,
        retain_until=dt.datetime(2026, 10, 1, tzinfo=dt.UTC) if call.expired else None,
        customer_id=customers[call.customer] if call.customer is not None else None,
    )
    if call.excluded is not None:
        exclude(runtime, call.excluded, recording_id=recording_id)
    return recording_id


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    archive=st.lists(calls, max_size=24),
    per_agent=st.integers(min_value=1, max_value=4),
    bounds=st.sampled_from([(None, None), (30, None), (None, 600), (30, 600)]),
    excluded_customers=st.dictionaries(
        st.integers(0, 2), st.sampled_from(EXCLUSIONS[1:]), max_size=2
    ),
    objected_later=st.integers(min_value=0, max_value=3),
)
def test_no_excluded_call_is_ever_sampled_and_each_agent_gets_min_n(
    runtime: Runtime,
    archive: list[Call],
    per_agent: int,
    bounds: tuple[int | None, int | None],
    excluded_customers: dict[int, RestrictionKind],
    objected_later: int,
) -> None:
    queue = f"p-{uuid.uuid4().hex[:10]}"
    customers = [f"C-{queue}-{n}" for n in range(3)]
    stored = [(call, _store(runtime, call, queue, customers)) for call in archive]
    for number, kind in excluded_customers.items():
        exclude(runtime, kind, customer_id=customers[number])
    low, high = bounds

    def eligible(call: Call) -> bool:
        return (
            call.agent is not None
            and not call.other_queue
            and not call.outside_week
            and not call.deleting
            and not call.expired
            and call.excluded is None
            and call.customer not in excluded_customers
            and (low is None or call.seconds >= low)
            and (high is None or call.seconds <= high)
        )

    expected = {rid: call.agent for call, rid in stored if eligible(call)}
    plan = create_plan(
        runtime,
        name=queue,
        criteria=Criteria(
            per_agent, "week", queues=[queue], min_duration_s=low, max_duration_s=high
        ),
        actor=TRAINER,
    )
    view = run_sample(runtime, plan.id, "2026-W40", actor=TRAINER)
    with runtime.sessions() as session:
        rows = list(
            session.scalars(select(SampleCall).where(SampleCall.sample_id == view.sample.id))
        )
    assert {r.recording_id: r.agent for r in rows} == expected
    picked = {r.recording_id for r in rows if r.picked}
    shown = {uuid.UUID(item["id"]) for item in view.as_dict()["recordings"]}
    assert shown == picked <= set(expected)
    per_agent_count = Counter(expected.values())
    assert Counter(expected[rid] for rid in picked) == {
        agent: min(per_agent, n) for agent, n in per_agent_count.items()
    }
    assert verify_sample(runtime, view.sample.id, actor=TRAINER).ok

    later = sorted(picked)[:objected_later]
    for number, rid in enumerate(later):
        kind = EXCLUSIONS[1 + number % 2]
        assert kind is not None
        exclude(runtime, kind, recording_id=rid)
    again = show_sample(runtime, view.sample.id, actor=TRAINER)
    still = {uuid.UUID(item["id"]) for item in again.as_dict()["recordings"]}
    assert still == picked - set(later)
    assert sum(a.withdrawn for a in again.agents) == len(later)
