"""Catalogue failures are classified where the driver raises them, and claims stay honest.

On the real backends: a PostgreSQL server that refuses the connection or
drops it mid-transaction, SQLite's write lock held past the busy timeout,
a role or a schema that is missing. Then the leases of work items: renewed
while a worker works, never shortened, and the releases a worker owes after
an outage paid when the catalogue is back.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from recarchive.catalogue.database import (
    check_connection,
    create_catalogue_engine,
    transaction,
    utcnow,
)
from recarchive.catalogue.intake import WorkItem, WorkState
from recarchive.catalogue.migrate import upgrade_schema
from recarchive.errors import CatalogueMisconfigured, CatalogueUnavailable
from recarchive.ingest import queue
from recarchive.ingest.leases import LeaseKeeper, OwedReleases
from recarchive.lifecycle import Backoff
from tests.conftest import postgres_admin_url

SECRET_NUMBER = "+358401234567"


def _postgres_url(database: str = "postgres", **changes: object) -> str:
    url = make_url(postgres_admin_url()).set(database=database, **changes)  # type: ignore[arg-type]
    return url.render_as_string(hide_password=False)


# --- classification -------------------------------------------------------------


@pytest.mark.postgres
def test_a_server_that_refuses_the_connection_is_unavailable() -> None:
    engine = create_catalogue_engine(_postgres_url(port=1), connect_timeout_s=2)
    try:
        with (
            pytest.raises(CatalogueUnavailable, match=r"catalogue postgresql\+psycopg://.*:1/"),
            engine.connect() as connection,
        ):
            connection.execute(text("SELECT 1"))
        with pytest.raises(CatalogueUnavailable, match=r"setting catalogue\.url: cannot connect"):
            check_connection(engine)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_role_that_does_not_exist_needs_the_operator() -> None:
    engine = create_catalogue_engine(_postgres_url(username="no_such_role"), connect_timeout_s=2)
    try:
        with pytest.raises(CatalogueMisconfigured, match='role "no_such_role" does not exist'):
            check_connection(engine)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_connection_dropped_mid_transaction_is_unavailable_and_the_pool_recovers() -> None:
    engine = create_catalogue_engine(_postgres_url())
    admin = create_catalogue_engine(_postgres_url())
    try:
        with engine.connect() as connection:
            pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with admin.begin() as other:
                other.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            with pytest.raises(CatalogueUnavailable, match="terminating connection") as caught:
                connection.execute(text("SELECT :n::text"), {"n": SECRET_NUMBER})
        assert SECRET_NUMBER not in str(caught.value)
        assert SECRET_NUMBER not in str(caught.value.__cause__)
        with engine.connect() as connection:  # a new connection, not the dead one
            assert connection.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()
        admin.dispose()


def test_sqlite_locked_past_the_busy_timeout_is_unavailable(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    engine = create_catalogue_engine(url)
    holder = create_catalogue_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (n TEXT)"))
        with holder.connect() as held:
            held.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock, kept
            with engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA busy_timeout=200")
                with pytest.raises(CatalogueUnavailable, match="database is locked"):
                    connection.execute(text("INSERT INTO t VALUES (:n)"), {"n": SECRET_NUMBER})
            held.exec_driver_sql("ROLLBACK")
    finally:
        engine.dispose()
        holder.dispose()


def test_no_schema_needs_the_operator(empty_catalogue_url: str) -> None:
    engine = create_catalogue_engine(empty_catalogue_url)
    try:
        with (
            pytest.raises(CatalogueMisconfigured, match=r"run `recarchive init`"),
            engine.connect() as connection,
        ):
            connection.execute(select(WorkItem.id))
    finally:
        engine.dispose()


# --- backoff ----------------------------------------------------------------------


def test_backoff_doubles_up_to_its_cap_with_jitter_and_resets() -> None:
    backoff = Backoff("test", first_s=1.0, cap_s=8.0)
    waits = [backoff.failed("down") for _ in range(7)]
    for wait, step in zip(waits, [1, 2, 4, 8, 8, 8, 8], strict=True):
        assert step / 2 <= wait <= step
    assert len({round(w, 6) for w in waits[3:]}) > 1  # jitter: not all in step
    assert backoff.failing
    backoff.succeeded()
    assert not backoff.failing
    assert backoff.failed("down again") <= 1.0


# --- leases -----------------------------------------------------------------------


@pytest.fixture
def claimed(sessions: sessionmaker[Session]) -> Iterator[WorkItem]:
    now = utcnow()
    item_id = uuid.uuid4()
    with transaction(sessions) as session:
        session.add(
            WorkItem(
                id=item_id,
                source="spool",
                source_ref=f"lease-{item_id}",
                state=WorkState.PENDING,
                payload={},
                discovered_at=now - dt.timedelta(days=3650),  # the oldest: claimed first
            )
        )
    with transaction(sessions) as session:
        item = queue.claim(session, "host-a:1", now=now, lease_s=30, sources=["spool"])
    assert item is not None
    assert item.id == item_id
    yield item
    with transaction(sessions) as session:
        session.execute(WorkItem.__table__.delete().where(WorkItem.id == item_id))


def _lease(sessions: sessionmaker[Session], item_id: uuid.UUID) -> dt.datetime | None:
    with sessions() as session:
        return session.scalar(select(WorkItem.lease_until).where(WorkItem.id == item_id))


def test_a_lease_is_renewed_while_the_worker_works(
    sessions: sessionmaker[Session], claimed: WorkItem
) -> None:
    first = _lease(sessions, claimed.id)
    assert first is not None
    with LeaseKeeper(sessions, claimed.id, "host-a:1", lease_s=3600, interval_s=0.05) as keeper:
        deadline = time.monotonic() + 10
        while keeper.renewals < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    renewed = _lease(sessions, claimed.id)
    assert keeper.renewals >= 2
    assert renewed is not None
    assert renewed > first + dt.timedelta(seconds=3000)


def test_claims_waiting_for_their_group_commit_are_renewed_with_the_one_in_hand(
    sessions: sessionmaker[Session], claimed: WorkItem
) -> None:
    first = _lease(sessions, claimed.id)
    assert first is not None
    in_hand = uuid.uuid4()  # its row does not matter here: the waiting claim does
    keeper = LeaseKeeper(sessions, in_hand, "host-a:1", lease_s=3600, waiting=[claimed.id])
    assert keeper.renew()
    renewed = _lease(sessions, claimed.id)
    assert renewed is not None
    assert renewed > first + dt.timedelta(seconds=3000)
    other = LeaseKeeper(sessions, in_hand, "host-b:9", lease_s=7200, waiting=[claimed.id])
    assert not other.renew()
    assert _lease(sessions, claimed.id) == renewed


def test_a_renewal_never_shortens_a_lease_nor_touches_another_workers_claim(
    sessions: sessionmaker[Session], claimed: WorkItem
) -> None:
    before = _lease(sessions, claimed.id)
    assert not LeaseKeeper(sessions, claimed.id, "host-a:1", lease_s=1).renew()
    assert not LeaseKeeper(sessions, claimed.id, "host-b:9", lease_s=3600).renew()
    assert _lease(sessions, claimed.id) == before


def test_releases_owed_after_an_outage_are_paid_when_the_catalogue_is_back(
    sessions: sessionmaker[Session], claimed: WorkItem
) -> None:
    owed = OwedReleases("host-a:1")
    owed.owe(claimed.id, CatalogueUnavailable("catalogue x: connection refused"))
    assert owed.pay(sessions) == 1
    assert owed.items == set()
    with sessions() as session:
        item = session.get(WorkItem, claimed.id)
        assert item is not None
        assert (item.state, item.claimed_by, item.lease_until) == (WorkState.PENDING, None, None)


def test_an_owed_release_leaves_an_item_another_worker_took_over(
    sessions: sessionmaker[Session], claimed: WorkItem
) -> None:
    owed = OwedReleases("host-b:9")  # host-a holds it now (took it over after the lease)
    owed.owe(claimed.id, CatalogueUnavailable("catalogue x: connection refused"))
    assert owed.pay(sessions) == 0
    with sessions() as session:
        item = session.get(WorkItem, claimed.id)
        assert item is not None
        assert item.claimed_by == "host-a:1"


def test_a_renewal_thread_survives_a_catalogue_it_cannot_reach(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    engine: Engine = create_catalogue_engine(url)
    upgrade_schema(engine)
    sessions = sessionmaker(engine)
    try:
        keeper = LeaseKeeper(sessions, uuid.uuid4(), "host-a:1", lease_s=60, interval_s=0.02)
        with engine.connect() as held:
            held.exec_driver_sql("BEGIN EXCLUSIVE")  # nobody else may even read
            started = time.monotonic()
            with keeper:  # its renewal waits for the lock (SQLite's busy timeout: 30 s)
                time.sleep(0.3)
            elapsed = time.monotonic() - started
            held.exec_driver_sql("ROLLBACK")
    finally:
        engine.dispose()
    # The block ended without an error and without waiting out the blocked renewal.
    assert elapsed < 0.3 + 2.5
    assert keeper.renewals == 0
