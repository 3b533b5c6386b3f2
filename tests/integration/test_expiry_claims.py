"""Expiry run from several places at once, and a store that fails part-way through a batch.

Both catalogues. Two runs overlap for certain: each one's first batch delete
waits at a barrier until the other has claimed its own batch too. A store
that deletes part of a batch and then fails (a radosgw dying mid-request)
is the real filesystem or S3 store behind a wrapper.
"""

# The ``runtime`` and ``two_runtimes`` fixtures come from other test modules; pytest
# hands them over by parameter name, which pyflakes sees as redefining the import.
# ruff: noqa: F811

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterable
from typing import Any

import pytest
from sqlalchemy import select, update

from recarchive.access.models import AuditEvent
from recarchive.catalogue.database import transaction, utcnow
from recarchive.catalogue.models import Recording, RecordingStatus
from recarchive.errors import StoreUnavailable
from recarchive.retention import expiry
from recarchive.retention.claims import claim, retention_rule_sql, stale_after
from recarchive.retention.expiry import ExpiryReport, expire_recordings
from recarchive.retention.integrity import verify_integrity
from recarchive.retention.models import Tombstone
from recarchive.retention.reconcile import reconcile_store
from recarchive.runtime import Runtime
from recarchive.storage.interfaces import DeleteResult
from tests.functional.embedded import invoke
from tests.integration.test_hold_race import add_recording as add_due
from tests.integration.test_hold_race import two_runtimes  # noqa: F401
from tests.integration.test_retention import T0, add_recording, runtime, state  # noqa: F401
from tests.s3env import s3_environment


class WrappedStore:
    """The real store, with ``delete_many`` (and maybe ``exists``) replaced by the test."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def use_store(runtime: Runtime, store: Any) -> None:
    runtime.__dict__["store"] = store


def tombstones(runtime: Runtime) -> dict[uuid.UUID, str]:
    with runtime.sessions() as session:
        return dict(session.execute(select(Tombstone.recording_id, Tombstone.rule)).all())


def statuses(runtime: Runtime) -> dict[uuid.UUID, RecordingStatus]:
    with runtime.sessions() as session:
        return dict(session.execute(select(Recording.id, Recording.status)).all())


def audit_actions(runtime: Runtime) -> list[str]:
    with runtime.sessions() as session:
        return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)))


# --- two runs at once -------------------------------------------------------------


class GatedStore(WrappedStore):
    """The first batch delete waits until the other run reaches its own first delete."""

    def __init__(self, store: Any, gate: threading.Barrier) -> None:
        super().__init__(store)
        self._gate = gate
        self._waited = False

    def delete_many(self, keys: Iterable[str]) -> DeleteResult:
        if not self._waited:
            self._waited = True
            self._gate.wait(timeout=60)  # both runs hold a claimed batch now
        result: DeleteResult = self._store.delete_many(keys)
        return result


@pytest.mark.slow
def test_two_expiry_runs_at_once_share_the_work(
    two_runtimes: tuple[Runtime, Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(expiry, "BATCH", 10)
    first, second = two_runtimes
    due = utcnow() - dt.timedelta(days=1)
    ids = {add_due(first, retain_until=due) for _ in range(60)}
    gate = threading.Barrier(2)
    for runner in (first, second):
        use_store(runner, GatedStore(runner.store, gate))
    reports: dict[str, ExpiryReport] = {}
    errors: list[BaseException] = []

    def run(name: str, runner: Runtime) -> None:
        try:
            reports[name] = expire_recordings(runner, now=utcnow())
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
            gate.abort()

    threads = [
        threading.Thread(target=run, args=(name, runner))
        for name, runner in (("first", first), ("second", second))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, f"a run failed: {errors!r}"
    stones = tombstones(first)
    assert set(stones) == ids
    assert set(stones.values()) == {"retention:default"}
    assert reports["first"].deleted + reports["second"].deleted == len(stones)
    assert reports["first"].deleted > 0  # both really ran at once, each on its own share
    assert reports["second"].deleted > 0
    assert all(r.failed == r.unsettled == 0 for r in reports.values())
    assert statuses(first) == {}
    assert list(first.store.list("recordings/")) == []
    assert audit_actions(first).count("delete") == len(ids)


# --- a store failing part-way -----------------------------------------------------


class DiesMidway(WrappedStore):
    """Deletes the first half of a batch, then fails like a server going away."""

    def delete_many(self, keys: Iterable[str]) -> DeleteResult:
        wanted = list(keys)
        self._store.delete_many(wanted[: len(wanted) // 2])
        raise StoreUnavailable("the S3 server went away during DeleteObjects")


def no_active_row_lacks_its_object(runtime: Runtime) -> None:
    with runtime.sessions() as session:
        active = session.scalars(
            select(Recording.object_key).where(Recording.status == RecordingStatus.ACTIVE)
        ).all()
    assert [key for key in active if not runtime.store.exists(key)] == []


def cli_env(runtime: Runtime) -> dict[str, str]:
    settings = runtime.settings
    env = {
        "RECARCHIVE_GENERAL_DATA_DIR": str(settings.general.data_dir),
        "RECARCHIVE_CATALOGUE_URL": settings.catalogue_url,
    }
    if settings.storage.backend == "s3":
        env.update(s3_environment(), RECARCHIVE_S3_BUCKET=settings.s3.bucket)
    return env


@pytest.mark.parametrize("reconcile_first", [False, True], ids=["expire", "reconcile"])
def test_a_batch_delete_failing_part_way_is_settled_by_the_next_run(
    runtime: Runtime, reconcile_first: bool
) -> None:
    recordings = [add_recording(runtime, retain_until=T0) for _ in range(6)]
    ids = {r.id for r in recordings}
    real = runtime.store
    use_store(runtime, DiesMidway(real))
    report = expire_recordings(runtime, now=T0)
    use_store(runtime, real)
    assert (report.deleted, report.failed, report.unsettled) == (0, 0, 6)
    rows, stones, objects = state(runtime)
    assert (rows, stones) == (ids, set())
    assert len(objects) == 3  # the server deleted half before it died
    assert set(statuses(runtime).values()) == {RecordingStatus.DELETING}
    no_active_row_lacks_its_object(runtime)

    checked = verify_integrity(runtime, all_=True)
    assert (checked.missing, checked.unsettled, checked.intact) == (0, 6, True)
    shown = invoke(cli_env(runtime), "verify", "--all")
    assert shown.exit_code == 0, shown.output
    assert "unsettled until the next expiry), not checked: 6" in shown.output
    assert "integrity.missing" not in audit_actions(runtime)

    if reconcile_first:  # the objects gone are settled by the claim's rule, not the backstop's
        reconciled = reconcile_store(runtime)
        assert (reconciled.finished_expiry, reconciled.tombstoned_backstop) == (3, 0)
        assert not reconciled.needs_attention
    cutoff = (T0 + dt.timedelta(seconds=1)).isoformat()
    expired = invoke(cli_env(runtime), "expire", "--now", cutoff, "--force")
    assert expired.exit_code == 0, expired.output
    assert f"deleted {3 if reconcile_first else 6} recording(s)" in expired.output
    assert "unsettled (store failed" not in expired.output
    rows, stones, objects = state(runtime)
    assert (rows, stones, objects) == (set(), ids, set())
    assert set(tombstones(runtime).values()) == {"retention:default"}
    again = reconcile_store(runtime)
    assert (again.finished_expiry, again.tombstoned_backstop, again.tombstoned_missing) == (0, 0, 0)


class LosesTrack(WrappedStore):
    """Per-key failures: one key deleted all the same, one kept, one the store cannot tell."""

    def __init__(self, store: Any, deleted: str, kept: str, unknown: str) -> None:
        super().__init__(store)
        self._keys = (deleted, kept, unknown)

    def delete_many(self, keys: Iterable[str]) -> DeleteResult:
        deleted, kept, unknown = self._keys
        wanted = list(keys)
        done = self._store.delete_many([k for k in wanted if k not in (kept, unknown)])
        failed = {key: "InternalError: try again" for key in self._keys}
        return DeleteResult(deleted=tuple(k for k in done.deleted if k != deleted), failed=failed)

    def exists(self, key: str) -> bool:
        if key == self._keys[2]:
            raise StoreUnavailable("the S3 server went away during HeadObject")
        return bool(self._store.exists(key))


def test_per_key_failures_are_settled_by_what_the_store_holds(runtime: Runtime) -> None:
    plain, deleted, kept, unknown = (add_recording(runtime, retain_until=T0) for _ in range(4))
    real = runtime.store
    use_store(runtime, LosesTrack(real, deleted.object_key, kept.object_key, unknown.object_key))
    report = expire_recordings(runtime, now=T0)
    use_store(runtime, real)
    assert (report.deleted, report.failed, report.unsettled) == (2, 1, 1)
    assert set(tombstones(runtime)) == {plain.id, deleted.id}  # gone, though reported failed
    assert statuses(runtime) == {
        kept.id: RecordingStatus.ACTIVE,  # the store still has it: tried again next run
        unknown.id: RecordingStatus.DELETING,  # nobody knows: settled next run
    }
    no_active_row_lacks_its_object(runtime)
    assert expire_recordings(runtime, now=T0).deleted == 2
    assert state(runtime) == (set(), {plain.id, deleted.id, kept.id, unknown.id}, set())


class DiesAfter(WrappedStore):
    """Deletes whole batches ``good`` times, then fails every delete like a server gone."""

    def __init__(self, store: Any, good: int) -> None:
        super().__init__(store)
        self._good = good
        self.sent: list[list[str]] = []

    def delete_many(self, keys: Iterable[str]) -> DeleteResult:
        wanted = list(keys)
        self.sent.append(wanted)
        if len(self.sent) > self._good:
            raise StoreUnavailable("the S3 server went away during DeleteObjects")
        result: DeleteResult = self._store.delete_many(wanted)
        return result


@pytest.mark.parametrize("good", [0, 1, 2])
def test_batches_sent_ahead_stop_with_the_store_and_leave_no_row_wrong(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, good: int
) -> None:
    """The next batch's deletes go out while this one settles; a dead store stops the run
    after the batch already sent is settled, and nothing further is claimed."""
    monkeypatch.setattr(expiry, "BATCH", 3)
    ids = {add_recording(runtime, retain_until=T0).id for _ in range(11)}
    real = runtime.store
    store = DiesAfter(real, good)
    use_store(runtime, store)
    report = expire_recordings(runtime, now=T0)
    use_store(runtime, real)
    sent = good + 1  # the batches that worked, and the first that failed: no more
    assert len(store.sent) == sent
    assert (report.deleted, report.failed, report.unsettled) == (3 * good, 0, 3)
    assert len(tombstones(runtime)) == 3 * good
    by_status = statuses(runtime)
    failed_keys = set(store.sent[-1])
    assert sum(s == RecordingStatus.DELETING for s in by_status.values()) == 3
    assert sum(s == RecordingStatus.ACTIVE for s in by_status.values()) == 11 - 3 * sent
    with runtime.sessions() as session:
        deleting = set(
            session.scalars(
                select(Recording.object_key).where(Recording.status == RecordingStatus.DELETING)
            )
        )
    assert deleting == failed_keys  # only the batch the dead store was asked about
    no_active_row_lacks_its_object(runtime)
    assert audit_actions(runtime).count("delete") == 3 * good

    again = expire_recordings(runtime, now=T0)  # the store is back: everything settles
    assert (again.deleted, again.failed, again.unsettled) == (11 - 3 * good, 0, 0)
    assert state(runtime) == (set(), ids, set())
    assert audit_actions(runtime).count("delete") == 11


class Counting(WrappedStore):
    def __init__(self, store: Any) -> None:
        super().__init__(store)
        self.calls = 0
        self.second_sent = threading.Event()

    def delete_many(self, keys: Iterable[str]) -> DeleteResult:
        self.calls += 1
        if self.calls == 2:
            self.second_sent.set()
        result: DeleteResult = self._store.delete_many(keys)
        return result


def test_the_next_batch_is_deleted_while_this_one_settles(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(expiry, "BATCH", 4)
    ids = {add_recording(runtime, retain_until=T0).id for _ in range(10)}
    store = Counting(runtime.store)
    use_store(runtime, store)
    overlapped: list[bool] = []
    bury_many = expiry.bury_many

    def bury_when_the_next_is_out(*args: Any, **kwargs: Any) -> Any:
        if not overlapped:  # the first batch settles while the second's delete is out
            overlapped.append(store.second_sent.wait(timeout=20))
        return bury_many(*args, **kwargs)

    monkeypatch.setattr(expiry, "bury_many", bury_when_the_next_is_out)
    report = expire_recordings(runtime, now=T0)
    assert overlapped == [True]
    assert (report.deleted, report.failed, report.unsettled) == (10, 0, 0)
    assert store.calls == 3
    assert state(runtime) == (set(), ids, set())
    assert audit_actions(runtime).count("delete") == 10


# --- a run that died --------------------------------------------------------------


def test_a_claim_is_left_to_its_live_run_and_taken_over_once_stale(runtime: Runtime) -> None:
    recordings = [add_recording(runtime, retain_until=T0) for _ in range(3)]
    ids = [r.id for r in recordings]
    stale = stale_after(runtime.settings.retention)
    with transaction(runtime.sessions) as session:  # a run claims them ...
        claimed = claim(
            session, ids, run_id="dead-run", rule=retention_rule_sql(), held_at=T0, stale=stale
        )
    assert len(claimed) == 3
    runtime.store.delete(recordings[0].object_key)  # ... deletes one object, and dies

    assert expire_recordings(runtime, now=T0).deleted == 0  # its claim is fresh: left alone
    reconciled = reconcile_store(runtime)
    assert (reconciled.deletion_in_progress, reconciled.finished_expiry) == (1, 0)
    assert tombstones(runtime) == {}

    with transaction(runtime.sessions) as session:  # time passes
        session.execute(
            update(Recording).values(deleting_since=utcnow() - stale - dt.timedelta(minutes=1))
        )
    report = expire_recordings(runtime, now=T0)
    assert (report.deleted, report.failed, report.unsettled) == (3, 0, 0)
    assert tombstones(runtime) == dict.fromkeys(ids, "retention:default")
    assert state(runtime) == (set(), set(ids), set())
