"""Fault injection on the real services: a PostgreSQL the tests stop, a radosgw they kill.

- ``dedicated_postgres`` (session): a PostgreSQL server of this tier's own
  (:mod:`tests.faults.postgres`), on a free port of 127.0.0.1. Its binaries
  come from Debian's ``postgresql`` package (``scripts/test`` installs it);
  without them the tier is skipped, or fails when
  ``RECARCHIVE_TEST_REQUIRE_POSTGRES=1`` (set by ``scripts/test``).
- ``fault_catalogue``: a fresh migrated database on it, for one test.
- ``pg_outage``: stops that server for some seconds in a background thread;
  whatever happens, it runs again when the test ends.
- ``radosgw``: SIGKILL the test S3 server's radosgw and start it again
  (:mod:`tests.faults.radosgw`); it always runs again when the test ends.
  Without a controllable S3 server the test is skipped, or fails when
  ``RECARCHIVE_TEST_REQUIRE_S3=1``.
- ``recarchive``: runs ``python -m recarchive`` as a process, the way
  operators run it, and kills whatever a test left running.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from tests.conftest import PostgresDatabases
from tests.faults.postgres import DedicatedPostgres, Outage, find_binaries
from tests.faults.processes import Recarchive
from tests.faults.radosgw import RadosGateway, Unavailable
from tests.s3env import s3_environment


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.path)).is_relative_to(here):
            item.add_marker(pytest.mark.faults)
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def dedicated_postgres() -> Iterator[DedicatedPostgres]:
    binaries = find_binaries()
    if binaries is None:
        message = (
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin "
            "(Debian's postgresql package; scripts/test installs it)"
        )
        if os.environ.get("RECARCHIVE_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    server = DedicatedPostgres.create(binaries)
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="session")
def fault_databases(dedicated_postgres: DedicatedPostgres) -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases(dedicated_postgres.admin_url)
    databases.admin.dispose()
    # No pooled admin connection: every one of them dies with each outage.
    databases.admin = create_engine(
        databases.admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    yield databases
    databases.close()


@pytest.fixture
def fault_catalogue(fault_databases: PostgresDatabases) -> Iterator[str]:
    """URL of a fresh migrated catalogue on the dedicated server."""
    url = fault_databases.create(migrated=True)
    yield url
    fault_databases.drop(url)


@pytest.fixture
def pg_outage(dedicated_postgres: DedicatedPostgres) -> Iterator[Callable[..., Outage]]:
    """``pg_outage(seconds, after=0)``: stop the dedicated server in a background thread."""
    outages: list[Outage] = []

    def start(seconds: float, *, after: float = 0.0) -> Outage:
        outage = dedicated_postgres.outage(seconds, after=after)
        outages.append(outage)
        return outage

    yield start
    for outage in outages:
        outage.thread.join(120)
    if not dedicated_postgres.running():
        dedicated_postgres.start()


@pytest.fixture
def radosgw() -> Iterator[RadosGateway]:
    """The test S3 server's radosgw, running again after the test whatever happened."""
    endpoint = s3_environment()["RECARCHIVE_S3_ENDPOINT_URL"]
    try:
        gateway = RadosGateway(endpoint)
    except Unavailable as exc:
        if os.environ.get("RECARCHIVE_TEST_REQUIRE_S3") == "1":
            pytest.fail(f"cannot control the S3 server: {exc}")
        pytest.skip(f"cannot control the S3 server: {exc}")
    try:
        yield gateway
    finally:
        gateway.ensure_running()


@pytest.fixture
def recarchive(tmp_path: Path) -> Iterator[Recarchive]:
    runner = Recarchive(tmp_path)
    yield runner
    runner.close()
