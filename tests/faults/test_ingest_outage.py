"""A running ``recarchive ingest --workers 2`` through a 15 s catalogue outage.

Issue 19: a database blip is retried, never fatal, never reported wrong.
The long-running ingest keeps running while PostgreSQL is stopped (as a
crash would stop it) in the middle of a spool, finishes the spool once the
server is back, and when stopped with SIGTERM reports exactly what it
archived. Afterwards every call is archived once, with its object, and no
work item is left ``claimed`` for the 900 s lease.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from recarchive.catalogue.models import Recording
from tests.faults.installation import installation_env
from tests.faults.invariants import archive_state, assert_consistent
from tests.faults.postgres import Outage
from tests.faults.processes import Recarchive, wait_for
from tests.functional.embedded import generate

CALLS = 110
OUTAGE_S = 15.0


def test_ingest_with_two_workers_survives_a_catalogue_outage(
    tmp_path: Path,
    fault_catalogue: str,
    pg_outage: Callable[..., Outage],
    recarchive: Recarchive,
) -> None:
    spool = tmp_path / "pbx"
    manifest = generate(spool, CALLS)
    expected = [c["source_ref"] for c in manifest["calls"] if c["expected"] == "archived"]
    env = installation_env(
        tmp_path, fault_catalogue, spool=spool, RECARCHIVE_INGEST_POLL_INTERVAL_S="1"
    )
    assert recarchive.run(env, "init").returncode == 0
    catalogue = create_engine(fault_catalogue, poolclass=NullPool)

    def archived() -> int:
        with catalogue.connect() as connection:
            return int(connection.scalar(select(func.count(Recording.id))) or 0)

    ingest = recarchive.start(env, "ingest", "--workers", "2", "--json")
    try:
        wait_for(lambda: archived() >= 10, ingest, timeout=120, what="archived recordings")
        before = archived()
        outage = pg_outage(OUTAGE_S)
        assert before < len(expected) - 10, "ingest was nearly done before the outage: more calls"
        assert outage.went_down.wait(30)
        outage.wait()
        assert ingest.alive(), f"ingest exited during the outage:\n{ingest.tail()}"

        def all_archived() -> bool:
            try:
                return archived() == len(expected)
            except OperationalError:
                return False

        wait_for(all_archived, ingest, timeout=120, what="archive of every call after the outage")
        time.sleep(1.5)  # another pass: nothing left to claim or to archive twice
        assert ingest.alive(), f"ingest exited after the outage:\n{ingest.tail()}"
    finally:
        result = ingest.stop()
        catalogue.dispose()
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    state = archive_state(env)
    assert summary["archived"] == len(state.rows) == len(expected), summary
    assert_consistent(
        state,
        expected_refs=expected,
        audit_verify=lambda: recarchive.run(env, "audit", "verify"),
    )
