"""Dispute cases on both catalogues: their use cases, their one hold, their keep period.

One catalogue per module and backend for the use cases (each test opens its
own cases with references of its own); the tests that run expiry or the
nightly job get a fresh catalogue of their own, since those delete whatever
is due.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, update

from recarchive.access.models import AuditEvent, Role
from recarchive.access.policy import Forbidden
from recarchive.access.users import add_user
from recarchive.catalogue.database import transaction, utcnow
from recarchive.catalogue.models import Recording, RecordingStatus
from recarchive.catalogue.services import CLASS_TAG
from recarchive.disputes.cases import (
    CaseConflict,
    CaseInputError,
    CaseNotFound,
    add_note,
    add_years,
    assign,
    close_case,
    list_cases,
    open_case,
    show_case,
)
from recarchive.disputes.keeping import custody, purge_closed_cases
from recarchive.disputes.linking import (
    MAX_SEARCH_LINKS,
    TooManyMatches,
    link_recordings,
    link_search,
    unlink_recording,
)
from recarchive.disputes.models import Case, CaseRecording, CaseTombstone
from recarchive.lookup.filters import SearchFilters
from recarchive.retention.claims import claim, new_run_id
from recarchive.retention.expiry import expire_recordings
from recarchive.retention.holds import HoldError, place_hold, release_hold
from recarchive.retention.models import Hold, HoldRecording, Tombstone
from recarchive.retention.tasks import run_nightly_if_due
from recarchive.runtime import Runtime
from tests.actors import ADMIN, staff
from tests.api_fixtures import add_customer, add_recording, build_runtime, close_runtime

DAY = dt.timedelta(days=1)
UTC = dt.UTC
HANDLER = staff("case-handler")
OFFICER = staff("case-officer", Role.PRIVACY_OFFICER)


def _users(runtime: Runtime) -> None:
    add_user(runtime, HANDLER.name, Role.DISPUTE_HANDLER, actor=ADMIN)
    add_user(runtime, OFFICER.name, Role.PRIVACY_OFFICER, actor=ADMIN)
    add_user(runtime, "case-trainer", Role.QA_TRAINER, actor=ADMIN)


@pytest.fixture(scope="module")
def runtime(catalogue_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    runtime = build_runtime(catalogue_url, Path(tmp_path_factory.mktemp("cases")))
    _users(runtime)
    add_customer(runtime, "C-CASE-1", "Case Customer")
    yield runtime
    close_runtime(runtime)


@pytest.fixture
def fresh(empty_catalogue_url: str, tmp_path: Path) -> Iterator[Runtime]:
    runtime = build_runtime(empty_catalogue_url, tmp_path)
    _users(runtime)
    yield runtime
    close_runtime(runtime)


def ref() -> str:
    return f"DISPUTE-{uuid.uuid4().hex[:8]}"


def actions(runtime: Runtime, reference: str) -> list[str]:
    with runtime.sessions() as session:
        return list(
            session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.case_ref == reference)
                .order_by(AuditEvent.seq)
            )
        )


def tag_of(runtime: Runtime, recording: Recording) -> str:
    return runtime.store.get_tags(recording.object_key)[CLASS_TAG]


def test_a_case_is_opened_worked_on_and_closed_with_every_step_audited(runtime: Runtime) -> None:
    reference = ref()
    first, second = add_recording(runtime), add_recording(runtime)
    case = open_case(
        runtime,
        reference=f"  {reference} ",
        kind="billing",
        actor=HANDLER,
        customer_id="C-CASE-1",
        document_ref="INV-7",
    )
    assert (case.reference, case.summary.status, case.summary.handler) == (
        reference,
        "open",
        HANDLER.name,
    )
    assert case.hold is None
    linked = link_recordings(runtime, case.id, [first.id, second.id], actor=HANDLER)
    assert {r.id for r in linked.recordings} == {first.id, second.id}
    assert linked.hold is not None
    assert linked.hold["recordings"] == 2
    assert tag_of(runtime, first) == runtime.settings.retention.held_class
    again = link_recordings(runtime, reference, [first.id], actor=OFFICER)  # by reference
    assert again.hold == linked.hold, "one hold per case, the same recordings"
    unlinked = unlink_recording(runtime, case.id, second.id, actor=HANDLER)
    assert [r.id for r in unlinked.recordings] == [first.id]
    assert unlinked.hold is not None
    assert unlinked.hold["recordings"] == 1
    assert tag_of(runtime, second) == "standard", "the freed recording has its class back"
    noted = add_note(runtime, case.id, "Customer says\nthe tariff was wrong.", actor=HANDLER)
    assert [n["text"] for n in noted.notes] == ["Customer says\nthe tariff was wrong."]
    assigned = assign(runtime, case.id, OFFICER.name, actor=HANDLER)
    assert assigned.summary.handler == OFFICER.name
    assert [c.id for c in list_cases(runtime, actor=HANDLER)].count(case.id) == 1
    shown = show_case(runtime, case.id, actor=OFFICER)
    assert shown.recordings[0].other_holds == 0
    closed = close_case(runtime, case.id, reason="credited the invoice", actor=OFFICER)
    assert closed.summary.status == "closed"
    assert closed.close_reason == "credited the invoice"
    assert closed.hold is not None
    assert closed.hold["released_at"] is not None
    assert closed.summary.closed_at is not None
    assert closed.delete_after == add_years(closed.summary.closed_at, 3)
    assert tag_of(runtime, first) == "standard"
    assert case.id not in [c.id for c in list_cases(runtime, actor=HANDLER)]
    assert case.id in [c.id for c in list_cases(runtime, actor=HANDLER, status="closed")]
    recorded = actions(runtime, reference)
    for action in ("case.open", "hold.place", "case.link", "hold.reduce", "case.unlink"):
        assert action in recorded
    for action in ("case.note", "case.assign", "case.view", "hold.release", "case.close"):
        assert action in recorded
    assert recorded.count("case.link") == 1, "linking a linked recording again changes nothing"
    assert "hold.extend" not in recorded
    with runtime.sessions() as session:
        details = session.scalars(
            select(AuditEvent.details).where(AuditEvent.case_ref == reference)
        ).all()
    assert not any("C-CASE-1" in str(d) or "tariff" in str(d) for d in details)


def test_custody_holds_the_case_and_its_recordings_oldest_first(runtime: Runtime) -> None:
    reference = ref()
    recording = add_recording(runtime)
    case = open_case(runtime, reference=reference, kind="contract", actor=HANDLER)
    link_recordings(runtime, case.id, [recording.id], actor=HANDLER)
    with transaction(runtime.sessions) as session:  # an earlier play of the recording
        from recarchive.access.audit import append_event

        append_event(session, actor="someone", action="play", recording_id=recording.id)
    entries = custody(runtime, reference, actor=OFFICER)
    assert [e["seq"] for e in entries] == sorted(e["seq"] for e in entries)
    assert {"case.open", "hold.place", "case.link", "play"} <= {e["action"] for e in entries}
    assert all(e["hash"] for e in entries)
    later = custody(runtime, case.id, actor=OFFICER)
    assert "case.custody" in [e["action"] for e in later], "the first read is on record"


@pytest.mark.parametrize(
    ("reference", "field"),
    [("", "reference"), ("   ", "reference"), ("X" * 129, "reference"), ("A\x00B", "reference"),
     ("A\nB", "reference"), ("A\x1bB", "reference")],
)  # fmt: skip
def test_nasty_references_are_refused(runtime: Runtime, reference: str, field: str) -> None:
    with pytest.raises(CaseInputError) as raised:
        open_case(runtime, reference=reference, kind="billing", actor=HANDLER)
    assert raised.value.field == field


def test_nasty_inputs_are_refused_and_change_nothing(runtime: Runtime) -> None:
    reference = ref()
    with pytest.raises(CaseInputError, match="customer_id: no customer"):
        open_case(runtime, reference=reference, kind="billing", actor=HANDLER, customer_id="C-NO")
    with pytest.raises(CaseInputError, match="kind"):
        open_case(runtime, reference=reference, kind="fraud", actor=HANDLER)
    with pytest.raises(CaseInputError, match="handler"):
        open_case(runtime, reference=reference, kind="other", actor=HANDLER, handler="case-trainer")
    with pytest.raises(CaseInputError, match="handler"):
        open_case(runtime, reference=reference, kind="other", actor=HANDLER, handler="nobody")
    assert actions(runtime, reference) == []
    case = open_case(runtime, reference="X" * 128, kind="other", actor=HANDLER)
    assert case.reference == "X" * 128
    open_case(runtime, reference=reference, kind="complaint", actor=HANDLER)
    with pytest.raises(CaseConflict, match=f"reference {reference} is taken"):
        open_case(runtime, reference=reference, kind="billing", actor=OFFICER)
    unknown = uuid.uuid4()
    with pytest.raises(HoldError, match=str(unknown)):
        link_recordings(runtime, reference, [unknown], actor=HANDLER)
    with pytest.raises(CaseInputError):
        link_recordings(runtime, reference, [], actor=HANDLER)
    with pytest.raises(CaseNotFound):
        link_recordings(runtime, uuid.uuid4(), [unknown], actor=HANDLER)
    with pytest.raises(CaseNotFound):
        show_case(runtime, "NO-SUCH-CASE", actor=HANDLER)
    with pytest.raises(CaseNotFound, match="does not link"):
        unlink_recording(runtime, reference, unknown, actor=HANDLER)
    with pytest.raises(CaseInputError, match="text"):
        add_note(runtime, reference, " \n ", actor=HANDLER)
    with pytest.raises(CaseInputError, match="reason"):
        close_case(runtime, reference, reason="", actor=HANDLER)
    close_case(runtime, reference, reason="withdrawn", actor=HANDLER)
    with pytest.raises(CaseConflict, match="closed"):
        close_case(runtime, reference, reason="again", actor=HANDLER)
    recording = add_recording(runtime)
    with pytest.raises(CaseConflict, match="closed"):
        link_recordings(runtime, reference, [recording.id], actor=HANDLER)
    with pytest.raises(CaseConflict, match="closed"):
        add_note(runtime, reference, "late", actor=HANDLER)
    assert actions(runtime, reference) == ["case.open", "case.close"]


@pytest.mark.parametrize("role", [Role.QA_TRAINER, Role.AUDITOR, Role.ADMIN])
def test_roles_that_may_not_see_cases_are_refused(runtime: Runtime, role: Role) -> None:
    case = open_case(runtime, reference=ref(), kind="billing", actor=HANDLER)
    someone = staff(f"refused-{role.value}", role)
    for call in (
        lambda: open_case(runtime, reference=ref(), kind="billing", actor=someone),
        lambda: list_cases(runtime, actor=someone),
        lambda: show_case(runtime, case.id, actor=someone),
        lambda: custody(runtime, case.id, actor=someone),
        lambda: link_recordings(runtime, case.id, [uuid.uuid4()], actor=someone),
        lambda: unlink_recording(runtime, case.id, uuid.uuid4(), actor=someone),
        lambda: add_note(runtime, case.id, "x", actor=someone),
        lambda: assign(runtime, case.id, HANDLER.name, actor=someone),
        lambda: close_case(runtime, case.id, reason="x", actor=someone),
    ):
        with pytest.raises(Forbidden):
            call()
    assert actions(runtime, case.reference) == ["case.open"]


def test_a_case_hold_is_released_only_by_closing_the_case(runtime: Runtime) -> None:
    recording = add_recording(runtime)
    case = open_case(runtime, reference=ref(), kind="billing", actor=HANDLER)
    linked = link_recordings(runtime, case.id, [recording.id], actor=HANDLER)
    assert linked.hold is not None
    hold_id = uuid.UUID(linked.hold["id"])
    with pytest.raises(HoldError, match=f"belongs to dispute case {case.reference}: close"):
        release_hold(runtime, hold_id, actor=OFFICER, reason="tidying up")
    with runtime.sessions() as session:
        hold = session.get(Hold, hold_id)
        assert hold is not None
        assert hold.released_at is None
        assert hold.case_id == case.id


def test_a_recording_being_deleted_is_refused_clearly(runtime: Runtime) -> None:
    claimed = add_recording(runtime, retain_until=utcnow() - DAY)
    free = add_recording(runtime)
    case = open_case(runtime, reference=ref(), kind="billing", actor=HANDLER)
    with transaction(runtime.sessions) as session:  # an expiry run has claimed it
        got = claim(
            session,
            [claimed.id],
            run_id=new_run_id(),
            rule="retention:test",
            held_at=utcnow(),
            stale=dt.timedelta(minutes=30),
        )
    assert [g.recording_id for g in got] == [claimed.id]
    with pytest.raises(HoldError, match=f"recording {claimed.id} is being deleted"):
        link_recordings(runtime, case.id, [free.id, claimed.id], actor=HANDLER)
    shown = show_case(runtime, case.id, actor=HANDLER)
    assert shown.recordings == [], "nothing was linked"
    assert shown.hold is None
    assert tag_of(runtime, free) == "standard"
    linked = link_recordings(runtime, case.id, [free.id], actor=HANDLER)
    assert linked.hold is not None
    with pytest.raises(HoldError, match="being deleted"):
        link_recordings(runtime, case.id, [claimed.id], actor=HANDLER)
    assert [r.id for r in show_case(runtime, case.id, actor=HANDLER).recordings] == [free.id]


def test_search_links_every_match_and_refuses_too_many(runtime: Runtime) -> None:
    agent = f"agent-{uuid.uuid4().hex[:6]}"
    found = [add_recording(runtime, agent=agent) for _ in range(3)]
    case = open_case(runtime, reference=ref(), kind="billing", actor=HANDLER)
    linked = link_search(runtime, case.id, SearchFilters(agent=agent), actor=HANDLER)
    assert {r.id for r in linked.recordings} == {r.id for r in found}
    crowd = f"crowd-{uuid.uuid4().hex[:6]}"
    template = found[0]
    rows = [
        {
            "id": uuid.uuid4(), "source": "bulk", "source_ref": f"bulk-{i}-{crowd}",
            "started_at": template.started_at, "duration_ms": 1000, "agent": crowd,
            "object_key": f"recordings/bulk/{crowd}/{i}.wav", "format": "wav",
            "codec": "pcm_s16le", "channels": 1, "sample_rate": 8000, "size_bytes": 10,
            "sha256": "0" * 64, "retain_until": utcnow() + 365 * DAY,
            "direction": template.direction, "customer_match": template.customer_match,
            "status": RecordingStatus.ACTIVE, "retention_class": "standard",
            "retention_rule": "default",
        }
        for i in range(MAX_SEARCH_LINKS + 1)
    ]  # fmt: skip
    with transaction(runtime.sessions) as session:
        session.execute(insert(Recording), rows)
    with pytest.raises(TooManyMatches, match=f"more than {MAX_SEARCH_LINKS}"):
        link_search(runtime, case.id, SearchFilters(agent=crowd), actor=HANDLER)
    assert len(show_case(runtime, case.id, actor=HANDLER).recordings) == 3
    with transaction(runtime.sessions) as session:
        session.execute(
            update(Recording)
            .where(Recording.agent == crowd)
            .values(status=RecordingStatus.DELETING)
        )


def test_closing_releases_only_its_own_hold(fresh: Runtime) -> None:
    runtime = fresh
    add_customer(runtime, "C-HELD", "Held Customer")
    due = utcnow() - DAY
    alone = add_recording(runtime, retain_until=due)
    shared = add_recording(runtime, retain_until=due)
    manual = add_recording(runtime, retain_until=due)
    customers = add_recording(runtime, retain_until=due, customer_id="C-HELD")
    first = open_case(runtime, reference="FIRST", kind="billing", actor=HANDLER)
    second = open_case(runtime, reference="SECOND", kind="contract", actor=OFFICER)
    link_recordings(
        runtime, first.id, [alone.id, shared.id, manual.id, customers.id], actor=HANDLER
    )
    link_recordings(runtime, second.id, [shared.id], actor=OFFICER)
    place_hold(
        runtime, case_ref="LEGAL-1", reason="claim", actor=OFFICER, recording_ids=[manual.id]
    )
    customer_hold = place_hold(
        runtime, case_ref="LEGAL-2", reason="claim", actor=OFFICER, customer_id="C-HELD"
    )
    shown = show_case(runtime, first.id, actor=HANDLER)
    assert {r.id: r.other_holds for r in shown.recordings} == {
        alone.id: 0, shared.id: 1, manual.id: 1, customers.id: 1
    }  # fmt: skip
    close_case(runtime, first.id, reason="settled", actor=HANDLER)
    held = runtime.settings.retention.held_class
    assert tag_of(runtime, shared) == tag_of(runtime, manual) == tag_of(runtime, customers) == held
    assert tag_of(runtime, alone) == "standard"
    report = expire_recordings(runtime, now=utcnow())
    assert report.deleted == 1
    with runtime.sessions() as session:
        assert set(session.scalars(select(Tombstone.recording_id))) == {alone.id}
        holds = {h.case_ref: h.released_at for h in session.scalars(select(Hold))}
    assert holds["FIRST"] is not None
    assert holds["SECOND"] is None
    assert holds["LEGAL-1"] is None
    assert holds["LEGAL-2"] is None
    # The customer's hold works as before: released by hand, it frees its recording.
    release_hold(runtime, customer_hold.hold.id, actor=OFFICER, reason="over")
    assert tag_of(runtime, customers) == "standard"
    assert expire_recordings(runtime, now=utcnow()).deleted == 1
    close_case(runtime, second.id, reason="settled", actor=OFFICER)
    assert tag_of(runtime, shared) == "standard", "free at last: no other hold names it"
    assert expire_recordings(runtime, now=utcnow()).deleted == 1
    assert tag_of(runtime, manual) == held


def test_unlinking_frees_a_due_recording_for_expiry(fresh: Runtime) -> None:
    runtime = fresh
    due = add_recording(runtime, retain_until=utcnow() - DAY)
    case = open_case(runtime, reference="UNLINK", kind="billing", actor=HANDLER)
    link_recordings(runtime, case.id, [due.id], actor=HANDLER)
    assert expire_recordings(runtime, now=utcnow()).deleted == 0
    unlink_recording(runtime, case.id, due.id, actor=HANDLER)
    assert expire_recordings(runtime, now=utcnow()).deleted == 1
    shown = show_case(runtime, case.id, actor=HANDLER)
    assert shown.recordings == []
    assert shown.hold is not None
    assert shown.hold["recordings"] == 0


def test_an_erased_recording_shows_as_deleted_in_its_case(fresh: Runtime) -> None:
    runtime = fresh
    recording = add_recording(runtime, retain_until=utcnow() - DAY)
    case = open_case(runtime, reference="ERASED", kind="billing", actor=HANDLER)
    link_recordings(runtime, case.id, [recording.id], actor=HANDLER)
    close_case(runtime, case.id, reason="settled", actor=HANDLER)
    assert expire_recordings(runtime, now=utcnow()).deleted == 1
    (gone,) = show_case(runtime, case.id, actor=HANDLER).recordings
    assert gone.status == "deleted"
    assert gone.started_at is None
    assert gone.other_holds is None


def test_the_nightly_job_deletes_cases_past_their_keep_period(fresh: Runtime) -> None:
    runtime = fresh
    recording = add_recording(runtime)
    old = open_case(runtime, reference="OLD", kind="billing", actor=HANDLER)
    young = open_case(runtime, reference="YOUNG", kind="billing", actor=HANDLER)
    link_recordings(runtime, old.id, [recording.id], actor=HANDLER)
    add_note(runtime, old.id, "private words", actor=HANDLER)
    closed = close_case(runtime, old.id, reason="settled", actor=HANDLER)
    assert closed.delete_after is not None
    assert closed.hold is not None
    close_case(runtime, young.id, reason="settled", actor=HANDLER, now=utcnow() + 365 * DAY)
    assert purge_closed_cases(runtime, now=closed.delete_after - dt.timedelta(seconds=1)) == 0
    run = run_nightly_if_due(runtime, now=closed.delete_after + 2 * DAY)
    assert run is not None
    with runtime.sessions() as session:
        assert session.get(Case, old.id) is None
        assert session.get(Case, young.id) is not None
        assert session.get(Hold, uuid.UUID(closed.hold["id"])) is None
        assert session.scalar(
            select(func.count()).select_from(HoldRecording).where(
                HoldRecording.hold_id == uuid.UUID(closed.hold["id"])
            )
        ) == 0  # fmt: skip
        assert session.scalar(
            select(func.count()).select_from(CaseRecording).where(CaseRecording.case_id == old.id)
        ) == 0  # fmt: skip
        stone = session.get(CaseTombstone, old.id)
        assert stone is not None
        assert stone.reference == "OLD"
        assert stone.recordings == 1
        deleted = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "case.delete")
        ).all()
        nightly = session.scalars(
            select(AuditEvent.details).where(AuditEvent.action == "nightly.run")
        ).all()
    assert [(e.case_ref, e.actor) for e in deleted] == [("OLD", "system")]
    assert "private words" not in str(deleted[0].details)
    assert [d["cases_deleted"] for d in nightly] == [1]


@pytest.mark.parametrize(
    ("closed", "years", "expected"),
    [
        (dt.datetime(2024, 2, 29, 12, tzinfo=UTC), 3, dt.datetime(2027, 2, 28, 12, tzinfo=UTC)),
        (dt.datetime(2024, 2, 29, 12, tzinfo=UTC), 4, dt.datetime(2028, 2, 29, 12, tzinfo=UTC)),
        (dt.datetime(2025, 12, 31, 23, tzinfo=UTC), 3, dt.datetime(2028, 12, 31, 23, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_keep_period_in_calendar_years(
    closed: dt.datetime, years: int, expected: dt.datetime
) -> None:
    assert add_years(closed, years) == expected


@pytest.mark.slow
def test_links_made_while_expiry_runs_are_never_lost(
    empty_catalogue_url: str, tmp_path: Path
) -> None:
    """One process links due recordings to a case while another runs expiry: each link
    either holds its recording for good or is refused, naming it, with nothing linked."""
    expirer = build_runtime(empty_catalogue_url, tmp_path)
    linker = build_runtime(empty_catalogue_url, tmp_path)
    _users(expirer)
    try:
        case = open_case(linker, reference="RACE", kind="billing", actor=HANDLER)
        accepted: list[uuid.UUID] = []
        refusals: list[tuple[uuid.UUID, str]] = []
        for _ in range(8):
            due = [add_recording(expirer, retain_until=utcnow() - DAY).id for _ in range(25)]
            start = threading.Barrier(2)

            def link_all(ids: list[uuid.UUID] = due, start: threading.Barrier = start) -> None:
                start.wait()
                for recording_id in ids:
                    try:
                        link_recordings(linker, case.id, [recording_id], actor=HANDLER)
                    except HoldError as exc:
                        refusals.append((recording_id, exc.message))
                    else:
                        accepted.append(recording_id)

            thread = threading.Thread(target=link_all)
            thread.start()
            start.wait()
            expire_recordings(expirer, now=utcnow())
            thread.join()
            expire_recordings(expirer, now=utcnow())
        with expirer.sessions() as session:
            alive = set(session.scalars(select(Recording.id)))
            linked = set(
                session.scalars(
                    select(CaseRecording.recording_id).where(CaseRecording.case_id == case.id)
                )
            )
        assert set(accepted) == linked, "a link is recorded exactly when it was accepted"
        assert linked <= alive, "a linked recording was deleted"
        assert all(str(rid) in message for rid, message in refusals), "a refusal names it"
        # Both outcomes happened: the test really raced (otherwise it proves nothing).
        assert accepted
        assert refusals
    finally:
        close_runtime(linker)
        close_runtime(expirer)


def test_two_first_links_at_once_share_the_case_hold(runtime: Runtime) -> None:
    case = open_case(runtime, reference=ref(), kind="billing", actor=HANDLER)
    recordings = [add_recording(runtime) for _ in range(4)]
    start = threading.Barrier(len(recordings))
    failures: list[BaseException] = []

    def link(recording_id: uuid.UUID) -> None:
        start.wait()
        try:
            link_recordings(runtime, case.id, [recording_id], actor=HANDLER)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=link, args=(r.id,)) for r in recordings]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    shown = show_case(runtime, case.id, actor=HANDLER)
    assert {r.id for r in shown.recordings} == {r.id for r in recordings}
    assert shown.hold is not None
    assert shown.hold["recordings"] == len(recordings)
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).where(Hold.case_id == case.id)) == 1
