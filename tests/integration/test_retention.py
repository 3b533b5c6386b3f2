"""Holds and nightly expiry on both catalogues, with the filesystem store and the S3 server."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select, text

from recarchive.access.models import AuditEvent, Role
from recarchive.access.policy import Forbidden
from recarchive.catalogue.database import create_catalogue_engine, transaction
from recarchive.catalogue.migrate import upgrade_schema
from recarchive.catalogue.models import Recording, RecordingReason, RecordingStatus
from recarchive.config import RetentionRule, RetentionSettings, load_settings
from recarchive.retention.apply import PolicyChangeRefused, apply_policy
from recarchive.retention.expiry import ClockRefused, check_clock, expire_recordings
from recarchive.retention.holds import HoldError, HoldNotFound, place_hold, release_hold
from recarchive.retention.models import Hold, HoldRecording, Tombstone
from recarchive.retention.tasks import run_nightly_if_due
from recarchive.runtime import Runtime
from recarchive.storage.interfaces import DeleteResult
from tests.actors import staff
from tests.s3env import s3_environment

T0 = dt.datetime(2025, 1, 10, 8, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


@pytest.fixture(params=["filesystem", pytest.param("s3", marks=pytest.mark.s3)])
def runtime(
    request: pytest.FixtureRequest, tmp_path: Path, empty_catalogue_url: str
) -> Iterator[Runtime]:
    engine = create_catalogue_engine(empty_catalogue_url)
    upgrade_schema(engine)
    engine.dispose()
    env: dict[str, str] = {
        "RECARCHIVE_GENERAL_DATA_DIR": str(tmp_path / "var"),
        "RECARCHIVE_CATALOGUE_URL": empty_catalogue_url,
    }
    if request.param == "s3":
        env.update(s3_environment())
        env["RECARCHIVE_S3_BUCKET"] = f"recarchive-ret-{uuid.uuid4().hex[:10]}"
    runtime = Runtime(load_settings(env=env))
    runtime.store.create()
    yield runtime
    if request.param == "s3":
        runtime.store.delete_many([info.key for info in runtime.store.list("")])
    runtime.close()


def add_recording(
    runtime: Runtime, *, retain_until: dt.datetime, customer_id: str | None = None
) -> Recording:
    recording_id = uuid.uuid4()
    key = f"recordings/2025/01/10/{recording_id}.wav"
    data = recording_id.bytes * 10
    info = runtime.store.put(key, io.BytesIO(data), tags={"retention-class": "standard"})
    recording = Recording(
        id=recording_id,
        source="pbx",
        source_ref=f"ref-{recording_id}",
        started_at=retain_until - 365 * DAY,
        duration_ms=1000,
        object_key=key,
        format="wav",
        codec="pcm_s16le",
        channels=1,
        sample_rate=8000,
        size_bytes=len(data),
        sha256=info.sha256 or "",
        retain_until=retain_until,
        customer_id=customer_id,
    )
    with transaction(runtime.sessions) as session:
        session.add(recording)
    return recording


def state(runtime: Runtime) -> tuple[set[uuid.UUID], set[uuid.UUID], set[str]]:
    with runtime.sessions() as session:
        rows = set(session.scalars(select(Recording.id)))
        tombstones = set(session.scalars(select(Tombstone.recording_id)))
    objects = {info.key for info in runtime.store.list("recordings/")}
    return rows, tombstones, objects


def test_expiry_deletes_what_is_due_and_leaves_tombstones(runtime: Runtime) -> None:
    due = add_recording(runtime, retain_until=T0)
    later = add_recording(runtime, retain_until=T0 + DAY)
    dry = expire_recordings(runtime, now=T0, dry_run=True)
    assert (dry.deleted, dry.by_rule["default"]) == (1, 1)
    assert state(runtime)[0] == {due.id, later.id}

    report = expire_recordings(runtime, now=T0)
    assert report.deleted == 1
    assert 0 < dry.seconds < 60
    assert 0 < report.seconds < 60
    rows, tombstones, objects = state(runtime)
    assert rows == {later.id}
    assert tombstones == {due.id}
    assert objects == {later.object_key}
    with runtime.sessions() as session:
        stone = session.get_one(Tombstone, due.id)
    assert (stone.object_key, stone.sha256, stone.retain_until) == (
        due.object_key,
        due.sha256,
        due.retain_until,
    )
    assert stone.rule == "retention:default"
    assert stone.deleted_by == "system"
    assert expire_recordings(runtime, now=T0).deleted == 0  # idempotent


def test_a_held_recording_waits_for_the_release_of_every_hold(runtime: Runtime) -> None:
    recording = add_recording(runtime, retain_until=T0)
    first = place_hold(runtime, case_ref="D-1", reason="billing dispute", actor=staff("maija"),
                       recording_ids=[recording.id])  # fmt: skip
    second = place_hold(runtime, case_ref="L-7", reason="legal claim", actor=staff("pekka"),
                        recording_ids=[recording.id])  # fmt: skip
    assert runtime.store.get_tags(recording.object_key) == {"retention-class": "held"}
    report = expire_recordings(runtime, now=T0 + 10 * DAY)
    assert (report.deleted, report.held_skipped) == (0, 1)

    release_hold(runtime, first.hold.id, actor=staff("maija"), reason="settled")
    assert runtime.store.get_tags(recording.object_key) == {"retention-class": "held"}
    assert expire_recordings(runtime, now=T0 + 10 * DAY).deleted == 0
    with pytest.raises(HoldError, match="already released"):
        release_hold(runtime, first.hold.id, actor=staff("maija"), reason="again")

    release_hold(runtime, second.hold.id, actor=staff("pekka"), reason="withdrawn")
    assert runtime.store.get_tags(recording.object_key) == {"retention-class": "standard"}
    assert expire_recordings(runtime, now=T0 + 10 * DAY).deleted == 1
    with runtime.sessions() as session:
        actions = [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.seq))]
    assert actions == ["hold.place", "hold.place", "hold.release", "hold.release", "delete"]


def test_a_customer_hold_covers_recordings_that_arrive_later(runtime: Runtime) -> None:
    before = add_recording(runtime, retain_until=T0, customer_id="C-9")
    hold = place_hold(
        runtime, case_ref="D-2", reason="dispute", actor=staff("maija"), customer_id="C-9"
    )
    assert hold.recordings == 1
    after = add_recording(runtime, retain_until=T0, customer_id="C-9")
    other = add_recording(runtime, retain_until=T0, customer_id="C-10")
    report = expire_recordings(runtime, now=T0)
    assert (report.deleted, report.held_skipped) == (1, 2)
    assert state(runtime)[0] == {before.id, after.id}
    assert other.id in state(runtime)[1]


def test_hold_bad_input(runtime: Runtime) -> None:
    recording = add_recording(runtime, retain_until=T0 + DAY)
    unknown = uuid.uuid4()
    with pytest.raises(HoldError, match=f"no recording {unknown}; nothing was held"):
        place_hold(runtime, case_ref="D", reason="r", actor=staff("a"),
                   recording_ids=[recording.id, unknown])  # fmt: skip
    with pytest.raises(HoldNotFound):
        release_hold(runtime, uuid.uuid4(), actor=staff("a"), reason="r")
    with pytest.raises(HoldError, match="in the past"):
        place_hold(runtime, case_ref="D", reason="r", actor=staff("a"),
                   recording_ids=[recording.id], until=T0)  # fmt: skip
    with transaction(runtime.sessions) as session:
        session.get_one(Recording, recording.id).status = RecordingStatus.DELETING
    with pytest.raises(HoldError, match="is being deleted"):
        place_hold(
            runtime, case_ref="D", reason="r", actor=staff("a"), recording_ids=[recording.id]
        )
    with runtime.sessions() as session:
        assert session.scalars(select(Hold)).all() == []


def test_an_interrupted_run_is_finished_by_the_next(runtime: Runtime) -> None:
    recording = add_recording(runtime, retain_until=T0)
    with transaction(runtime.sessions) as session:  # marked, object deleted, then a crash
        session.get_one(Recording, recording.id).status = RecordingStatus.DELETING
    runtime.store.delete(recording.object_key)
    assert expire_recordings(runtime, now=T0).deleted == 1
    assert state(runtime) == (set(), {recording.id}, set())


class FlakyStore:
    """The real store, except that deleting some keys fails (a server going away)."""

    def __init__(self, store: Any, failing: set[str]) -> None:
        self._store = store
        self._failing = failing

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def delete_many(self, keys: list[str]) -> DeleteResult:
        ok = [key for key in keys if key not in self._failing]
        result = self._store.delete_many(ok)
        failed: Mapping[str, str] = {
            key: "ServiceUnavailable" for key in keys if key in self._failing
        }
        return DeleteResult(deleted=result.deleted, failed={**result.failed, **failed})


def test_objects_the_store_fails_to_delete_keep_their_rows(runtime: Runtime) -> None:
    good = add_recording(runtime, retain_until=T0)
    stuck = add_recording(runtime, retain_until=T0)
    real = runtime.store
    runtime.__dict__["store"] = FlakyStore(real, {stuck.object_key})
    report = expire_recordings(runtime, now=T0)
    assert (report.deleted, report.failed) == (1, 1)
    runtime.__dict__["store"] = real
    rows, tombstones, objects = state(runtime)
    assert (rows, tombstones) == ({stuck.id}, {good.id})
    assert stuck.object_key in objects  # no tombstone for an object that still exists
    with runtime.sessions() as session:
        assert session.get_one(Recording, stuck.id).status is RecordingStatus.ACTIVE
    assert expire_recordings(runtime, now=T0).deleted == 1


def test_implausible_clock_is_refused(runtime: Runtime) -> None:
    add_recording(runtime, retain_until=T0 + 400 * DAY)
    with pytest.raises(ClockRefused, match="earlier than the newest recording"):
        check_clock(runtime, T0)
    with pytest.raises(ClockRefused, match="more than a day ahead"):
        check_clock(runtime, dt.datetime.now(dt.UTC) + 30 * DAY)
    check_clock(runtime, T0, force=True)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    offsets=st.lists(st.integers(min_value=-5, max_value=5), min_size=1, max_size=8),
    held=st.sets(st.integers(min_value=0, max_value=7), max_size=4),
    advance=st.integers(min_value=-3, max_value=6),
)
def test_property_nothing_early_nothing_held_everything_else(
    runtime: Runtime, offsets: list[int], held: set[int], advance: int
) -> None:
    with transaction(runtime.sessions) as session:
        for table in (HoldRecording, Hold, Tombstone, Recording):
            session.execute(delete(table))
    recordings = [add_recording(runtime, retain_until=T0 + n * DAY) for n in offsets]
    held_ids = {recordings[i].id for i in held if i < len(recordings)}
    if held_ids:
        place_hold(runtime, case_ref="P", reason="property", actor=staff("t"),
                   recording_ids=sorted(held_ids))  # fmt: skip
    now = T0 + advance * DAY
    expire_recordings(runtime, now=now)
    rows, tombstones, objects = state(runtime)
    for recording in recordings:
        due = recording.retain_until <= now
        if recording.id in held_ids or not due:
            assert recording.id in rows
            assert recording.object_key in objects
        else:
            assert recording.id in tombstones
            assert recording.object_key not in objects


def runtime_with(runtime: Runtime, retention: RetentionSettings) -> Runtime:
    return Runtime(runtime.settings.model_copy(update={"retention": retention}))


def test_apply_reports_then_changes_retention_after_a_policy_change(runtime: Runtime) -> None:
    billing = add_recording(runtime, retain_until=T0 + 100 * DAY)
    other = add_recording(runtime, retain_until=T0 + 100 * DAY)
    with transaction(runtime.sessions) as session:
        session.get_one(Recording, billing.id).reasons = [RecordingReason(code="billing")]
    rule = RetentionRule(name="billing-long", field="reason", values=["billing"], days=730)
    changed = runtime_with(runtime, RetentionSettings(rules=[rule]))
    try:
        dry = apply_policy(changed)
        assert not dry.executed
        assert dry.changes == {("default", "billing-long", "longer"): 1}
        with runtime.sessions() as session:
            assert session.get_one(Recording, billing.id).retention_rule == "default"

        with pytest.raises(Forbidden, match="needs a member of staff"):
            apply_policy(changed, execute=True)  # the system decides no policy change
        with pytest.raises(Forbidden, match="may not apply a retention policy change"):
            apply_policy(changed, execute=True, actor=staff("dora"))  # a dispute handler
        officer = staff("maija", Role.PRIVACY_OFFICER)
        done = apply_policy(changed, execute=True, actor=officer)
        assert done.executed
        with runtime.sessions() as session:
            [entry] = session.scalars(
                select(AuditEvent).where(AuditEvent.action == "retention.apply")
            ).all()
            assert (entry.actor, entry.actor_role) == ("maija", "privacy_officer")
        with runtime.sessions() as session:
            row = session.get_one(Recording, billing.id)
            assert row.retention_rule == "billing-long"
            assert row.retain_until == row.started_at + 730 * DAY
            assert session.get_one(Recording, other.id).retention_rule == "default"
        assert changed.store.get_tags(billing.object_key) == {"retention-class": "billing-long"}
        assert apply_policy(changed).changed == 0
    finally:
        changed.close()


def test_apply_refuses_to_shorten_held_recordings(runtime: Runtime) -> None:
    recording = add_recording(runtime, retain_until=T0 + 100 * DAY)
    place_hold(
        runtime, case_ref="D", reason="dispute", actor=staff("a"), recording_ids=[recording.id]
    )
    shorter = runtime_with(runtime, RetentionSettings(default_days=30))
    try:
        with pytest.raises(PolicyChangeRefused, match="shorten the retention of 1 held"):
            apply_policy(shorter, execute=True, actor=staff("maija", Role.PRIVACY_OFFICER))
        with runtime.sessions() as session:
            assert session.get_one(Recording, recording.id).retain_until == T0 + 100 * DAY
    finally:
        shorter.close()


def test_the_nightly_job_runs_once_per_night_by_one_runner(runtime: Runtime) -> None:
    due = add_recording(runtime, retain_until=T0)
    night = dt.datetime(2026, 1, 15, 0, 45, tzinfo=dt.UTC)  # 02:45 in Helsinki
    with _other_runner(runtime):
        assert run_nightly_if_due(runtime, now=night) is None  # someone else holds the lock
    run = run_nightly_if_due(runtime, now=night)
    assert run is not None
    assert run.scheduled == dt.datetime(2026, 1, 15, 0, 30, tzinfo=dt.UTC)
    assert run.expiry.deleted == 1
    assert due.id in state(runtime)[1]
    assert run_nightly_if_due(runtime, now=night + dt.timedelta(hours=3)) is None  # done today
    assert run_nightly_if_due(runtime, now=night + DAY) is not None  # the next night


@contextlib.contextmanager
def _other_runner(runtime: Runtime) -> Iterator[None]:
    """Hold the nightly lock the way another process would."""
    if runtime.engine.dialect.name == "postgresql":
        other = create_catalogue_engine(runtime.settings.catalogue_url)
        with other.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": 0x72636E74})
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": 0x72636E74})
        other.dispose()
        return
    path = runtime.settings.general.data_dir / "nightly.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT)
    process = subprocess.Popen(  # flock is per open file: hold it from another process
        [sys.executable, "-c", "import fcntl, sys, time; fcntl.flock(0, fcntl.LOCK_EX); "
         "print('locked', flush=True); time.sleep(60)"],
        stdin=descriptor, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    os.close(descriptor)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "locked"
        yield
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()
