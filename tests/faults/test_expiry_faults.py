"""Expiry when the S3 server dies mid-delete, and two expiries at once.

Issue 19: after radosgw is killed during a bulk delete, no recording is
left ``active`` without its object (the store may have deleted part of a
batch before the request failed), and a second run once it is back settles
everything. Two ``recarchive expire`` run at the same moment both succeed,
and between them delete each recording once: tombstones equal deletions
(audit ``delete`` entries) and the sum of what both report.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from sqlalchemy import create_engine, func, select
from sqlalchemy.pool import NullPool

from recarchive.access.models import AuditEvent
from recarchive.catalogue.models import Recording, RecordingStatus
from recarchive.config import load_settings
from recarchive.retention.models import Tombstone
from recarchive.retention.tasks import NIGHTLY_ACTION
from recarchive.runtime import Runtime
from tests.api_fixtures import close_runtime
from tests.faults.installation import installation_env
from tests.faults.invariants import archive_state, assert_consistent
from tests.faults.processes import Recarchive, wait_for
from tests.faults.radosgw import RadosGateway
from tests.faults.seeding import seed_due_recordings
from tests.functional.helpers import Result
from tests.s3env import s3_environment

#: Two DeleteObjects batches of 1,000 keys (about 0.7 s each on the test server).
ON_S3 = 2000
#: Three batches for each of two concurrent runs to contend for.
CONCURRENT = 3000


def report_of(result: Result) -> dict[str, int]:
    report: dict[str, int] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def test_radosgw_killed_during_a_bulk_delete_leaves_no_active_row_without_its_object(
    tmp_path: Path, fault_catalogue: str, radosgw: RadosGateway, recarchive: Recarchive
) -> None:
    env = installation_env(
        tmp_path,
        fault_catalogue,
        store_env=s3_environment(),
        # Give up quickly while radosgw is down, so that it is down for seconds only.
        RECARCHIVE_S3_MAX_ATTEMPTS="2",
        RECARCHIVE_S3_CONNECT_TIMEOUT_S="2",
    )
    assert recarchive.run(env, "init").returncode == 0, "init"
    catalogue = create_engine(fault_catalogue, poolclass=NullPool)
    try:
        seed_due_recordings(env, ON_S3)

        def progress() -> tuple[int, int]:
            """Tombstones so far, and recordings marked for deletion now."""
            with catalogue.connect() as connection:
                buried = connection.scalar(select(func.count(Tombstone.recording_id)))
                marked = connection.scalar(
                    select(func.count(Recording.id)).where(
                        Recording.status == RecordingStatus.DELETING
                    )
                )
                return int(buried or 0), int(marked or 0)

        expire = recarchive.start(env, "expire", "--json")
        deadline = time.monotonic() + 60
        # The second batch is marked (the first is buried): its DeleteObjects comes next,
        # from a client that exists already (the first request paid for making it).
        while not (progress()[0] > 0 and progress()[1] > 0):
            assert expire.alive(), f"expire ended before its second batch:\n{expire.tail()}"
            assert time.monotonic() < deadline, "expire marked no second batch"
            time.sleep(0.01)
        time.sleep(0.25)  # inside the DeleteObjects request (about 0.7 s for 1,000 keys)
        radosgw.kill()
        try:
            first = expire.finish(timeout=60)
        finally:
            radosgw.restart()
        assert "Traceback" not in first.stderr, first.stderr[-3000:]
        assert first.returncode in (0, 1), first.stderr[-3000:]
        reported = report_of(first)["deleted"]
        assert 0 < reported < ON_S3, f"the kill did not land mid-run: {report_of(first)}"
        after_kill = archive_state(env)
        stranded = len(after_kill.active_without_object)
        assert stranded == 0, (
            f"{stranded} rows active without their object after the kill "
            f"(first run reported {report_of(first)})"
        )

        second = recarchive.run(env, "expire", "--json")
        assert second.returncode == 0, second.stderr[-3000:]
        reported += report_of(second)["deleted"]
        settled = archive_state(env)
        assert_consistent(settled, audit_verify=lambda: recarchive.run(env, "audit", "verify"))
        assert not settled.rows
        assert not settled.objects
        assert len(settled.tombstones) == settled.audit["delete"] == ON_S3
        assert reported == ON_S3, "what the runs report is what they deleted"
    finally:
        catalogue.dispose()
        radosgw.ensure_running()
        close_runtime(Runtime(load_settings(env=env)))  # the test's bucket goes


def test_two_expiries_at_once_delete_each_recording_once(
    tmp_path: Path, fault_catalogue: str, recarchive: Recarchive
) -> None:
    env = installation_env(tmp_path, fault_catalogue)
    assert recarchive.run(env, "init").returncode == 0
    seed_due_recordings(env, CONCURRENT)
    runs = [recarchive.start(env, "expire", "--json") for _ in range(2)]
    finished = [run.finish(timeout=120) for run in runs]
    for result in finished:
        assert result.returncode == 0, result.stderr[-3000:]
        assert "Traceback" not in result.stderr
    reported = sum(report_of(result)["deleted"] for result in finished)
    state = archive_state(env)
    assert_consistent(state, audit_verify=lambda: recarchive.run(env, "audit", "verify"))
    assert not state.rows
    assert not state.objects
    assert len(state.tombstones) == state.audit["delete"] == reported == CONCURRENT, (
        len(state.tombstones),
        state.audit["delete"],
        [report_of(result) for result in finished],
    )


def test_expire_against_a_running_ingests_nightly_job_deletes_each_recording_once(
    tmp_path: Path, fault_catalogue: str, recarchive: Recarchive
) -> None:
    """A timer's ``expire`` and a long-running ingest's own nightly job, at the same time.

    A long-running ingest runs the nightly job it finds due at its start (the
    previous night's, here); an ``expire`` started with it deletes from the
    same due recordings. Both exit 0 and every recording is deleted once.
    """
    env = installation_env(tmp_path, fault_catalogue, RECARCHIVE_INGEST_POLL_INTERVAL_S="1")
    assert recarchive.run(env, "init").returncode == 0
    seed_due_recordings(env, CONCURRENT)
    catalogue = create_engine(fault_catalogue, poolclass=NullPool)

    def nightly_deleted() -> int | None:
        with catalogue.connect() as connection:
            details = connection.scalars(
                select(AuditEvent.details).where(AuditEvent.action == NIGHTLY_ACTION)
            ).all()
        return sum(int(d.get("deleted", 0)) for d in details) if details else None

    ingest = recarchive.start(env, "ingest")
    timer = recarchive.start(env, "expire", "--json")
    try:
        expired = timer.finish(timeout=180)
        wait_for(lambda: nightly_deleted() is not None, ingest, timeout=120,
                 what="the ingest's nightly run")  # fmt: skip
    finally:
        stopped = ingest.stop()
        catalogue.dispose()
    assert expired.returncode == 0, expired.stderr[-3000:]
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    for result in (expired, stopped):
        assert "Traceback" not in result.stderr
    by_nightly = nightly_deleted() or 0
    state = archive_state(env)
    assert_consistent(state, audit_verify=lambda: recarchive.run(env, "audit", "verify"))
    assert not state.rows
    assert len(state.tombstones) == state.audit["delete"] == CONCURRENT
    assert report_of(expired)["deleted"] + by_nightly == CONCURRENT, (
        report_of(expired),
        by_nightly,
    )
