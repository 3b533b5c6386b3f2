"""``recarchive scheduler`` through a 15 s catalogue outage that falls on its nightly time.

The nightly time (``retention.expiry_time``, in UTC here) is set a few
seconds ahead, so that the scheduler wakes for it while PostgreSQL is
stopped. It must keep running and run the job once the server is back: the
audit log then holds the ``nightly.run`` entry of that scheduled time.
(At start it catches up the previous day's run, which shows that it works
before the outage.)
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from recarchive.access.models import AuditEvent
from recarchive.retention.tasks import NIGHTLY_ACTION
from tests.faults.installation import installation_env
from tests.faults.invariants import archive_state, assert_consistent
from tests.faults.postgres import Outage
from tests.faults.processes import Recarchive, wait_for

OUTAGE_S = 15.0
#: Seconds from the scheduler's start to its nightly time: long enough for its start
#: and catch-up run, short enough that the time falls inside the outage.
DUE_IN_S = 9


def test_scheduler_survives_a_catalogue_outage_and_runs_the_job_when_due(
    tmp_path: Path,
    fault_catalogue: str,
    pg_outage: Callable[..., Outage],
    recarchive: Recarchive,
) -> None:
    due = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=DUE_IN_S)).replace(microsecond=0)
    env = installation_env(
        tmp_path,
        fault_catalogue,
        RECARCHIVE_GENERAL_TIMEZONE="UTC",
        RECARCHIVE_RETENTION_EXPIRY_TIME=due.strftime("%H:%M:%S"),
    )
    assert recarchive.run(env, "init").returncode == 0
    catalogue = create_engine(fault_catalogue, poolclass=NullPool)

    def scheduled_runs() -> set[str]:
        try:
            with catalogue.connect() as connection:
                details = connection.scalars(
                    select(AuditEvent.details).where(AuditEvent.action == NIGHTLY_ACTION)
                )
                return {str(d.get("scheduled")) for d in details}
        except OperationalError:
            return set()

    scheduler = recarchive.start(env, "scheduler")
    try:
        yesterday = (due - dt.timedelta(days=1)).isoformat()
        wait_for(lambda: yesterday in scheduled_runs(), scheduler, timeout=30,
                 what="the catch-up run of the previous day")  # fmt: skip
        outage = pg_outage(OUTAGE_S)
        assert outage.went_down.wait(30)
        assert dt.datetime.now(dt.UTC) < due - dt.timedelta(seconds=1), (
            "the outage began after the nightly time: the test set-up was too slow"
        )
        outage.wait()
        assert scheduler.alive(), f"scheduler exited during the outage:\n{scheduler.tail()}"
        wait_for(lambda: due.isoformat() in scheduled_runs(), scheduler, timeout=90,
                 what="the nightly run due during the outage")  # fmt: skip
        time.sleep(1)
        assert scheduler.alive(), f"scheduler exited after its run:\n{scheduler.tail()}"
    finally:
        result = scheduler.stop()
        catalogue.dispose()
    assert result.returncode == 0, result.stderr[-3000:]
    assert scheduled_runs() == {yesterday, due.isoformat()}, "each night's job ran once"
    assert_consistent(
        archive_state(env), audit_verify=lambda: recarchive.run(env, "audit", "verify")
    )
