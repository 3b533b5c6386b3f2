"""Sampling plans on both catalogues: fair, reproducible, filtered draws that never pick
what a QA trainer may not know of, and withdrawals of what training may no longer use."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from recarchive.access.actors import Actor
from recarchive.access.models import AuditEvent, Role
from recarchive.access.policy import Forbidden
from recarchive.access.services import Principal
from recarchive.catalogue.database import transaction
from recarchive.catalogue.models import Direction, Recording, RecordingStatus
from recarchive.catalogue.restrictions import RestrictionKind
from recarchive.privacy.restrictions import object_to_training
from recarchive.qa.draw import draw, rank
from recarchive.qa.models import SampleCall
from recarchive.qa.periods import PeriodError
from recarchive.qa.plans import Criteria, CriteriaError, create_plan, get_plan, revise_plan
from recarchive.qa.sampling import run_sample, show_sample
from recarchive.qa.verify import verify_sample
from recarchive.runtime import Runtime
from tests.actors import staff
from tests.api_fixtures import build_runtime, close_runtime
from tests.qa_fixtures import IN_WEEK_40, add_call, exclude

TRAINER = staff("qa-trainer", Role.QA_TRAINER)


@pytest.fixture(scope="module")
def runtime(catalogue_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    runtime = build_runtime(catalogue_url, Path(tmp_path_factory.mktemp("qa")))
    yield runtime
    close_runtime(runtime)


def _plan(runtime: Runtime, **criteria: object) -> uuid.UUID:
    values: dict[str, object] = {"calls_per_agent": 2, "period_kind": "week", **criteria}
    plan = create_plan(
        runtime, name=f"plan-{uuid.uuid4().hex[:8]}", criteria=Criteria(**values), actor=TRAINER
    )  # type: ignore[arg-type]
    return plan.id


def _picked(view: object) -> set[str]:
    return {item["id"] for item in view.as_dict()["recordings"]}  # type: ignore[attr-defined]


def test_the_same_plan_and_period_give_the_same_calls_and_say_so(runtime: Runtime) -> None:
    queue = f"q-{uuid.uuid4().hex[:6]}"
    for n in range(12):
        add_call(runtime, agent=f"agent-{n % 3}", queue=queue)
    plan_id = _plan(runtime, queues=[queue])
    first = run_sample(runtime, plan_id, "2026-W40", actor=TRAINER)
    again = run_sample(runtime, plan_id, "2026-W40", actor=TRAINER)
    shown = show_sample(runtime, first.sample.id, actor=TRAINER)
    assert not first.already_drawn
    assert again.already_drawn
    assert shown.already_drawn
    assert again.sample.id == first.sample.id
    assert again.sample.seed == first.sample.seed
    assert _picked(first) == _picked(again) == _picked(shown)
    assert len(_picked(first)) == 6  # 2 of each agent's 4
    assert [(a.agent, a.candidates, a.picked) for a in first.agents] == [
        (f"agent-{n}", 4, 2) for n in range(3)
    ]


def test_the_draw_is_each_agents_lowest_ranks_and_verify_repeats_it(runtime: Runtime) -> None:
    queue = f"q-{uuid.uuid4().hex[:6]}"
    calls = {
        agent: [add_call(runtime, agent=agent, queue=queue) for _ in range(5)] for agent in "ab"
    }
    plan_id = _plan(runtime, queues=[queue], calls_per_agent=3)
    view = run_sample(runtime, plan_id, "2026-W40", actor=TRAINER)
    seed = view.sample.seed
    expected = {
        str(rid)
        for agent, ids in calls.items()
        for rid in sorted(ids, key=lambda rid: rank(seed, rid))[:3]
    }
    assert _picked(view) == expected
    result = verify_sample(runtime, view.sample.id, actor=TRAINER)
    assert result.ok
    assert [(a.agent, a.candidates, a.picked, a.expected) for a in result.agents] == [
        ("a", 5, 3, 3),
        ("b", 5, 3, 3),
    ]
    # A pick swapped behind the archive's back is caught.
    with transaction(runtime.sessions) as session:
        rows = list(
            session.scalars(
                select(SampleCall).where(
                    SampleCall.sample_id == view.sample.id, SampleCall.agent == "a"
                )
            )
        )
        picked = next(r for r in rows if r.picked)
        unpicked = next(r for r in rows if not r.picked)
        picked.picked, unpicked.picked = False, True
    tampered = verify_sample(runtime, view.sample.id, actor=TRAINER)
    assert not tampered.ok
    assert [a.matches for a in tampered.agents] == [False, True]


def test_agents_with_fewer_candidates_get_all_of_theirs(runtime: Runtime) -> None:
    queue = f"q-{uuid.uuid4().hex[:6]}"
    busy = [add_call(runtime, agent="busy", queue=queue) for _ in range(6)]
    quiet = [add_call(runtime, agent="quiet", queue=queue)]
    view = run_sample(
        runtime, _plan(runtime, queues=[queue], calls_per_agent=4), "2026-W40", actor=TRAINER
    )
    counts = {a.agent: (a.candidates, a.picked) for a in view.agents}
    assert counts == {"busy": (6, 4), "quiet": (1, 1)}
    assert {str(quiet[0])} <= _picked(view) <= {str(r) for r in busy + quiet}


def test_filters_queue_reasons_direction_and_duration(runtime: Runtime) -> None:
    queue, other = f"q-{uuid.uuid4().hex[:6]}", f"q-{uuid.uuid4().hex[:6]}"
    wanted = add_call(runtime, agent="f", queue=queue, reasons=["billing"], seconds=120)
    misses = [
        add_call(runtime, agent="f", queue=other, reasons=["billing"]),
        add_call(runtime, agent="f", queue=queue, reasons=["moving"]),
        add_call(
            runtime, agent="f", queue=queue, reasons=["billing"], direction=Direction.OUTBOUND
        ),
        add_call(runtime, agent="f", queue=queue, reasons=["billing"], seconds=29),
        add_call(runtime, agent="f", queue=queue, reasons=["billing"], seconds=601),
        add_call(runtime, agent=None, queue=queue, reasons=["billing"]),
        add_call(
            runtime,
            agent="f",
            queue=queue,
            reasons=["billing"],
            started_at=IN_WEEK_40 + dt.timedelta(days=7),
        ),
    ]
    plan_id = _plan(
        runtime,
        calls_per_agent=50,
        queues=[queue],
        reason_codes=["billing", "outage"],
        direction="inbound",
        min_duration_s=30,
        max_duration_s=600,
    )
    view = run_sample(runtime, plan_id, "2026-W40", actor=TRAINER)
    assert _picked(view) == {str(wanted)}
    assert not _picked(view) & {str(m) for m in misses}


def test_a_week_starts_at_monday_midnight_in_the_installations_zone(runtime: Runtime) -> None:
    queue = f"q-{uuid.uuid4().hex[:6]}"
    # Monday 2026-09-28 00:00 in Helsinki is 2026-09-27 21:00 UTC.
    inside = add_call(
        runtime, agent="tz", queue=queue, started_at=dt.datetime(2026, 9, 27, 21, 0, tzinfo=dt.UTC)
    )
    add_call(
        runtime, agent="tz", queue=queue, started_at=dt.datetime(2026, 9, 27, 20, 59, tzinfo=dt.UTC)
    )
    view = run_sample(
        runtime, _plan(runtime, queues=[queue], calls_per_agent=9), "2026-W40", actor=TRAINER
    )
    assert _picked(view) == {str(inside)}


def test_excluded_expired_and_deleting_calls_are_never_candidates(runtime: Runtime) -> None:
    queue = f"q-{uuid.uuid4().hex[:6]}"
    customer = f"C-{uuid.uuid4().hex[:6]}"
    good = add_call(runtime, agent="x", queue=queue)
    objected = add_call(runtime, agent="x", queue=queue)
    restricted = add_call(runtime, agent="x", queue=queue)
    by_customer = add_call(runtime, agent="x", queue=queue, customer_id=customer)
    add_call(runtime, agent="x", queue=queue, status=RecordingStatus.DELETING)
    add_call(runtime, agent="x", queue=queue, retain_until=dt.datetime(2026, 10, 1, tzinfo=dt.UTC))
    exclude(runtime, RestrictionKind.OBJECTION, recording_id=objected)
    exclude(runtime, RestrictionKind.RESTRICTION, recording_id=restricted)
    exclude(runtime, RestrictionKind.OBJECTION, customer_id=customer)
    view = run_sample(
        runtime, _plan(runtime, queues=[queue], calls_per_agent=9), "2026-W40", actor=TRAINER
    )
    assert _picked(view) == {str(good)}
    assert view.sample.candidates == 1
    assert str(by_customer) not in _picked(view)


def test_a_call_objected_after_sampling_is_withdrawn_listed_never_again_and_audited(
    runtime: Runtime,
) -> None:
    queue = f"q-{uuid.uuid4().hex[:6]}"
    customer = f"C-{uuid.uuid4().hex[:6]}"
    later = add_call(runtime, agent="w", queue=queue, customer_id=customer)
    kept = add_call(runtime, agent="w", queue=queue)
    view = run_sample(
        runtime, _plan(runtime, queues=[queue], calls_per_agent=5), "2026-W40", actor=TRAINER
    )
    assert _picked(view) == {str(later), str(kept)}
    officer = Principal(uuid.uuid4(), "qa-test-officer", Role.PRIVACY_OFFICER, uuid.uuid4())
    object_to_training(runtime, officer, recording_ids=[later])  # the event withdraws it at once
    with runtime.sessions() as session:
        row = session.get(SampleCall, (view.sample.id, later))
        assert row is not None
        assert row.withdrawn_reason is not None
        assert row.withdrawn_reason.value == "objected"
        assert row.withdrawn_at is not None
        entries = list(
            session.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == "qa.withdraw", AuditEvent.recording_id == later
                )
            )
        )
    assert len(entries) == 1
    assert entries[0].details["sample_id"] == str(view.sample.id)
    assert entries[0].details["cause"] == "objection.place"
    shown = show_sample(runtime, view.sample.id, actor=TRAINER)
    assert _picked(shown) == {str(kept)}
    assert [(a.agent, a.picked, a.withdrawn) for a in shown.agents] == [("w", 2, 1)]
    # A re-run shows the stored sample: still without it; verify still holds.
    again = run_sample(runtime, shown.sample.plan_id, "2026-W40", actor=TRAINER)
    assert _picked(again) == {str(kept)}
    assert verify_sample(runtime, view.sample.id, actor=TRAINER).ok


def test_reading_withdraws_what_no_event_announced(runtime: Runtime) -> None:
    """An objection written without the event, and a deletion: the next showing finds both."""
    queue = f"q-{uuid.uuid4().hex[:6]}"
    customer = f"C-{uuid.uuid4().hex[:6]}"
    objected = add_call(runtime, agent="r", queue=queue, customer_id=customer)
    deleted = add_call(runtime, agent="r", queue=queue)
    kept = add_call(runtime, agent="r", queue=queue)
    view = run_sample(
        runtime, _plan(runtime, queues=[queue], calls_per_agent=5), "2026-W40", actor=TRAINER
    )
    exclude(runtime, RestrictionKind.OBJECTION, customer_id=customer)
    with transaction(runtime.sessions) as session:
        row = session.get(Recording, deleted)
        assert row is not None
        session.delete(row)
    shown = show_sample(runtime, view.sample.id, actor=TRAINER)
    assert _picked(shown) == {str(kept)}
    with runtime.sessions() as session:
        reasons = {
            c.recording_id: c.withdrawn_reason.value
            for c in session.scalars(
                select(SampleCall).where(SampleCall.sample_id == view.sample.id)
            )
            if c.withdrawn_reason is not None
        }
        audited = session.scalar(
            select(AuditEvent.seq).where(
                AuditEvent.action == "qa.withdraw", AuditEvent.recording_id == deleted
            )
        )
    assert reasons == {objected: "objected", deleted: "deleted"}
    assert audited is not None


def test_a_revision_is_a_new_version_and_samples_keep_theirs(runtime: Runtime) -> None:
    queue = f"q-{uuid.uuid4().hex[:6]}"
    for _ in range(4):
        add_call(runtime, agent="v", queue=queue)
    plan_id = _plan(runtime, queues=[queue], calls_per_agent=1)
    first = run_sample(runtime, plan_id, "2026-W40", actor=TRAINER)
    plan = revise_plan(
        runtime,
        plan_id,
        criteria=Criteria(calls_per_agent=3, period_kind="week", queues=[queue]),
        actor=TRAINER,
    )
    assert [v.version for v in plan.versions] == [1, 2]
    assert plan.current_version == 2
    second = run_sample(runtime, plan_id, "2026-W40", actor=TRAINER)
    assert not second.already_drawn
    assert second.sample.plan_version == 2
    assert len(_picked(second)) == 3
    old = show_sample(runtime, first.sample.id, actor=TRAINER)
    assert old.sample.plan_version == 1
    assert old.sample.criteria["calls_per_agent"] == 1
    assert len(_picked(old)) == 1


def test_the_draw_is_audited_with_numbers_only(runtime: Runtime) -> None:
    queue = f"q-{uuid.uuid4().hex[:6]}"
    customer = f"C-{uuid.uuid4().hex[:6]}"
    for n in range(3):
        add_call(runtime, agent=f"secret-agent-{n}", queue=queue, customer_id=customer)
    view = run_sample(runtime, _plan(runtime, queues=[queue]), "2026-W40", actor=TRAINER)
    with runtime.sessions() as session:
        entry = session.scalar(
            select(AuditEvent).where(
                AuditEvent.action == "qa.sample",
                AuditEvent.details["sample_id"].as_string() == str(view.sample.id),
            )
        )
    assert entry is not None
    details = entry.details
    assert details["seed"] == view.sample.seed
    assert details["period"] == "2026-W40"
    assert details["per_agent"] == [[1, 1], [1, 1], [1, 1]]
    assert "secret-agent" not in str(details)
    assert customer not in str(details)


@pytest.mark.parametrize(
    ("period", "problem"),
    [
        ("2026-W54", "ISO weeks 01 to 53"),
        ("2025-W53", "ISO weeks 01 to 52"),
        ("2026-W00", "ISO weeks"),
        ("2026-13", "months are 01 to 12"),
        ("2026-00", "months are 01 to 12"),
        ("garbage", "not a period"),
        ("", "not a period"),
        ("2026-W4", "not a period"),
        ("0001-W01", "out of range"),
        ("2026-10", "samples by week"),
        ("2999-W01", "has not ended"),
    ],
)
def test_bad_periods_are_refused_with_a_clear_error(
    runtime: Runtime, period: str, problem: str
) -> None:
    plan_id = _plan(runtime)
    with pytest.raises(PeriodError, match=problem) as caught:
        run_sample(runtime, plan_id, period, actor=TRAINER)
    assert caught.value.http_status == 422
    assert caught.value.field == "period"


@pytest.mark.parametrize(
    "criteria",
    [
        {"calls_per_agent": 0, "period_kind": "week"},
        {"calls_per_agent": 1, "period_kind": "day"},
        {"calls_per_agent": 1, "period_kind": "week", "direction": "sideways"},
        {"calls_per_agent": 1, "period_kind": "week", "min_duration_s": 60, "max_duration_s": 30},
        {"calls_per_agent": 1, "period_kind": "week", "min_duration_s": -1},
    ],
)
def test_bad_criteria_are_refused(runtime: Runtime, criteria: dict[str, object]) -> None:
    with pytest.raises(CriteriaError):
        create_plan(runtime, name="bad", criteria=Criteria(**criteria), actor=TRAINER)  # type: ignore[arg-type]


@pytest.mark.parametrize("role", [r for r in Role if r is not Role.QA_TRAINER])
def test_only_qa_trainers_plan_and_sample(runtime: Runtime, role: Role) -> None:
    plan_id = _plan(runtime)
    other = Actor("someone", role, "test")
    with pytest.raises(Forbidden):
        create_plan(runtime, name="x", criteria=Criteria(1, "week"), actor=other)
    with pytest.raises(Forbidden):
        run_sample(runtime, plan_id, "2026-W40", actor=other)
    with pytest.raises(Forbidden):
        run_sample(runtime, plan_id, "2026-W40", actor=Actor.system())


def test_draw_is_independent_of_the_order_of_candidates() -> None:
    ids = [uuid.uuid4() for _ in range(20)]
    seed = "00" * 16
    assert draw(seed, {"a": ids}, 5) == draw(seed, {"a": list(reversed(ids))}, 5)
    assert draw(seed, {"a": ids}, 5) != draw("11" * 16, {"a": ids}, 5)


def test_two_runs_at_once_draw_one_sample(runtime: Runtime) -> None:
    queue = f"q-{uuid.uuid4().hex[:6]}"
    for n in range(8):
        add_call(runtime, agent=f"race-{n % 2}", queue=queue)
    plan_id = _plan(runtime, queues=[queue])
    barrier = threading.Barrier(4)

    def run() -> tuple[uuid.UUID, bool, frozenset[str]]:
        barrier.wait()
        view = run_sample(runtime, plan_id, "2026-W40", actor=TRAINER)
        return view.sample.id, view.already_drawn, frozenset(_picked(view))

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: run(), range(4)))
    assert len({(sample_id, picks) for sample_id, _, picks in results}) == 1
    assert sorted(drawn for _, drawn, _ in results) == [False, True, True, True]


def test_revisions_at_once_each_get_a_version_of_their_own(runtime: Runtime) -> None:
    plan_id = _plan(runtime, queues=[f"q-{uuid.uuid4().hex[:6]}"])
    barrier = threading.Barrier(4)

    def revise(calls: int) -> None:
        barrier.wait()
        revise_plan(
            runtime, plan_id, criteria=Criteria(calls_per_agent=calls, period_kind="month"),
            actor=TRAINER,
        )  # fmt: skip

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(revise, range(2, 6)))
    plan = get_plan(runtime, plan_id, actor=TRAINER)
    assert sorted(v.version for v in plan.versions) == [1, 2, 3, 4, 5]
    assert plan.current_version == 5
    assert sorted(v.calls_per_agent for v in plan.versions if v.version > 1) == [2, 3, 4, 5]
