"""A catalogue that vanished or was replaced under a running process stops it.

On SQLite the file is deleted or another catalogue is moved onto its path
while a runtime has it open (its connections go on writing the unlinked
file); on both backends the installation id changes; on PostgreSQL the
database is dropped and created again under the same name. Ingest then
acknowledges nothing more to its source and ends with an error, the API
answers 503 to reads, the audit writer refuses entries it committed there,
and ``/healthz`` says which check failed.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text, update
from sqlalchemy.engine import make_url

from recarchive.access.audit import AuditEntry
from recarchive.access.models import Role
from recarchive.catalogue.database import create_catalogue_engine, transaction
from recarchive.catalogue.guard import (
    CatalogueGuard,
    check_catalogue_identity,
    check_catalogue_writable,
    read_identity,
)
from recarchive.catalogue.migrate import upgrade_schema
from recarchive.catalogue.models import Installation
from recarchive.errors import CatalogueReplaced, CatalogueUnavailable
from recarchive.ingest.services import Pipeline
from recarchive.ingest.sources import build_sources
from recarchive.ingest.tasks import IngestIncomplete, run_ingest
from recarchive.runtime import Runtime
from tests.api_fixtures import ApiClient, add_recording, build_runtime, close_runtime, tokens
from tests.conftest import PostgresDatabases
from tests.integration.test_ingest_spool import (  # the spool world of those tests
    GOOD_IN,
    GOOD_OUT,
    NO_CDR,
    audio,
    make_settings,
    spool,
)

__all__ = ["audio", "spool"]  # fixtures, imported to be found

DAY = "2026/03/14"
ARCHIVABLE = (GOOD_IN, GOOD_OUT, NO_CDR)
PLAY = {"purpose": "dispute", "case": "D-1"}
FILESYSTEM = '[storage]\nbackend = "filesystem"\n'


def migrated_sqlite(path: Path) -> str:
    url = f"sqlite:///{path}"
    engine = create_catalogue_engine(url)
    upgrade_schema(engine)
    engine.dispose()
    return url


def delete_sqlite(path: Path) -> None:
    """``rm recarchive.db*``: the database, its WAL and shared-memory files."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def replace_sqlite(path: Path) -> None:
    """Move another initialised catalogue (another installation id) onto ``path``."""
    other = path.with_name(f"other-{uuid.uuid4().hex[:8]}.db")
    migrated_sqlite(other)
    other.replace(path)


def change_installation_id(url: str) -> uuid.UUID:
    engine = create_catalogue_engine(url)
    new_id = uuid.uuid4()
    try:
        with engine.begin() as connection:
            connection.execute(update(Installation).values(installation_id=new_id))
    finally:
        engine.dispose()
    return new_id


# --- the identity and its check ------------------------------------------------------------


@pytest.fixture
def fresh_engine(empty_catalogue_url: str) -> Iterator[Engine]:
    engine = create_catalogue_engine(empty_catalogue_url)
    upgrade_schema(engine)
    yield engine
    engine.dispose()


def test_a_catalogue_is_its_own_installation_and_takes_a_heartbeat(fresh_engine: Engine) -> None:
    opened = read_identity(fresh_engine)
    check_catalogue_identity(fresh_engine, opened, reread=True)
    check_catalogue_writable(fresh_engine, opened)
    with fresh_engine.connect() as connection:
        row = connection.execute(select(Installation)).one()
    assert row.installation_id == opened.installation_id
    assert row.heartbeat_at is not None
    if fresh_engine.dialect.name == "sqlite":
        assert opened.path is not None
        assert opened.file_id is not None
    else:
        assert opened.database_oid is not None
        assert opened.path is None


def test_migration_gives_every_catalogue_its_own_installation_id(tmp_path: Path) -> None:
    first, second = (
        read_identity(create_catalogue_engine(migrated_sqlite(tmp_path / name)))
        for name in ("a.db", "b.db")
    )
    assert first.installation_id != second.installation_id


def test_another_installation_id_is_refused_and_stays_refused(
    empty_catalogue_url: str, fresh_engine: Engine
) -> None:
    now = [0.0]
    guard = CatalogueGuard(fresh_engine, read_identity(fresh_engine), clock=lambda: now[0])
    guard.check()
    new_id = change_installation_id(empty_catalogue_url)
    guard.check()  # within reread_s: the id is not read again
    now[0] += guard.reread_s
    with pytest.raises(CatalogueReplaced, match=f"installation id is now {new_id}") as caught:
        guard.check()
    assert "password" not in caught.value.message
    with pytest.raises(CatalogueReplaced):  # remembered: only a restart opens the new one
        guard.check()
    with pytest.raises(CatalogueReplaced, match="is not there"):
        check_catalogue_writable(fresh_engine, guard.opened)


def test_sqlite_file_deleted_or_replaced_is_refused_at_the_next_stat(tmp_path: Path) -> None:
    path = tmp_path / "recarchive.db"
    engine = create_catalogue_engine(migrated_sqlite(path))
    try:
        opened = read_identity(engine)
        replace_sqlite(path)
        with pytest.raises(CatalogueReplaced, match="another file is at its path"):
            check_catalogue_identity(engine, opened)
        delete_sqlite(path)
        with pytest.raises(CatalogueReplaced, match="the file is gone"):
            check_catalogue_identity(engine, opened)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgres_database_dropped_and_created_again_is_refused(
    postgres_databases: PostgresDatabases,
) -> None:
    url = postgres_databases.create()
    name = make_url(url).database
    engine = create_catalogue_engine(url)
    try:
        guard = CatalogueGuard(engine, read_identity(engine))
        engine.dispose()  # pool_pre_ping would find the dropped connections anyway
        postgres_databases.drop(url)
        with postgres_databases.admin.connect() as connection:  # same template, same id
            connection.execute(
                text(f'CREATE DATABASE "{name}" TEMPLATE "{postgres_databases.template}"')
            )
        with pytest.raises(CatalogueReplaced, match="dropped and created again"):
            guard.check(reread=True)
    finally:
        engine.dispose()


# --- ingest ------------------------------------------------------------------------------------


@pytest.fixture
def sqlite_runtime(spool: Path) -> Iterator[tuple[Runtime, Path]]:
    path = spool / "catalogue" / "recarchive.db"
    path.parent.mkdir()
    runtime = Runtime(make_settings(spool, migrated_sqlite(path), FILESYSTEM))
    runtime.store.create()
    yield runtime, path
    runtime.close()


def waiting(spool: Path) -> set[str]:
    """The archivable recordings still at the source (not acknowledged)."""
    return {name for name in ARCHIVABLE if (spool / "monitor" / DAY / name).exists()}


@pytest.mark.parametrize("vanish", [delete_sqlite, replace_sqlite], ids=["deleted", "replaced"])
def test_ingest_acknowledges_nothing_into_a_vanished_catalogue(
    sqlite_runtime: tuple[Runtime, Path], spool: Path, vanish: Callable[[Path], None]
) -> None:
    runtime, path = sqlite_runtime
    pipeline = Pipeline(runtime, build_sources(runtime.settings))
    pipeline.discover()
    while (result := pipeline.process_next()) is not None and result[0] != "archived":
        pass
    assert len(waiting(spool)) == len(ARCHIVABLE) - 1
    vanish(path)
    with pytest.raises(CatalogueReplaced, match=re.escape(str(path))):
        pipeline.drain()
    assert len(waiting(spool)) == len(ARCHIVABLE) - 1  # the next one stays at the source


@pytest.mark.parametrize("vanish", [delete_sqlite, replace_sqlite], ids=["deleted", "replaced"])
def test_running_ingest_stops_with_an_error_when_its_catalogue_vanishes(
    sqlite_runtime: tuple[Runtime, Path], spool: Path, vanish: Callable[[Path], None]
) -> None:
    runtime, path = sqlite_runtime
    archived: list[str] = []

    def after_item(outcome: str) -> None:
        if outcome == "archived" and not archived:
            archived.append(outcome)
            vanish(path)

    # Each recording committed on its own, so the first is reported before the next is stored.
    ingest = runtime.settings.ingest.model_copy(update={"group_commit": 1})
    settings = runtime.settings.model_copy(update={"ingest": ingest})
    with pytest.raises(IngestIncomplete, match=r"^ingest stopped: catalogue sqlite:///") as caught:
        run_ingest(settings, once=False, on_item=after_item)  # would poll forever
    assert "nothing was acknowledged" in caught.value.message
    assert caught.value.summary.archived >= 1
    assert len(waiting(spool)) == len(ARCHIVABLE) - 1


@pytest.mark.parametrize("vanish", [delete_sqlite, replace_sqlite], ids=["deleted", "replaced"])
def test_a_group_committed_before_its_catalogue_vanished_is_acknowledged_no_further(
    sqlite_runtime: tuple[Runtime, Path],
    spool: Path,
    vanish: Callable[[Path], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The group is committed, then the catalogue vanishes during its first acknowledgement."""
    runtime, path = sqlite_runtime
    [(name, source)] = build_sources(runtime.settings).items()
    acknowledge = source.acknowledge

    def vanish_then_acknowledge(discovery: Any) -> None:
        if path.exists() and len(waiting(spool)) == len(ARCHIVABLE):
            vanish(path)
        acknowledge(discovery)

    monkeypatch.setattr(source, "acknowledge", vanish_then_acknowledge)
    pipeline = Pipeline(runtime, {name: source})
    pipeline.discover()
    with pytest.raises(CatalogueReplaced, match=re.escape(str(path))):
        pipeline.drain()
    assert len(waiting(spool)) == len(ARCHIVABLE) - 1  # the rest of the group stays at the source


# --- API and audit ------------------------------------------------------------------------------


@pytest.fixture
def api_world(tmp_path: Path) -> Iterator[tuple[Runtime, ApiClient, str, Path]]:
    path = tmp_path / "catalogue" / "recarchive.db"
    path.parent.mkdir()
    runtime = build_runtime(migrated_sqlite(path), tmp_path / "data")
    role_tokens = tokens(runtime)
    recording = add_recording(runtime, started_at=dt.datetime(2026, 3, 14, 9, 0, tzinfo=dt.UTC))
    api = ApiClient(runtime, role_tokens)
    yield runtime, api, str(recording.id), path
    api.close()
    close_runtime(runtime)


@pytest.mark.parametrize("vanish", [delete_sqlite, replace_sqlite], ids=["deleted", "replaced"])
def test_api_answers_503_once_its_catalogue_vanished(
    api_world: tuple[Runtime, ApiClient, str, Path], vanish: Callable[[Path], None]
) -> None:
    _runtime, api, recording_id, path = api_world
    handler = api.as_role(Role.DISPUTE_HANDLER)
    url = f"/api/v1/recordings/{recording_id}"
    assert handler.get(url).status_code == 200
    assert handler.get(f"{url}/audio", params=PLAY).status_code == 200
    health = api.anonymous().get("/healthz")
    assert health.json() == {"status": "ok", "catalogue": "ok", "audit": "ok", "store": "ok"}
    vanish(path)
    for response in (
        handler.get(url),
        handler.get(f"{url}/audio", params=PLAY),
        api.as_role(Role.QA_TRAINER).get("/api/v1/recordings", params={"from": "2026-03-01"}),
    ):
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "unavailable"
        assert str(path) in response.json()["error"]["message"]
    health = api.anonymous().get("/healthz")
    assert health.status_code == 503
    assert health.json()["status"] == "unavailable"
    assert health.json()["catalogue"] == "replaced"
    assert health.json()["store"] == "ok"


def test_audit_entry_committed_to_a_vanished_catalogue_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "catalogue" / "recarchive.db"
    path.parent.mkdir()
    runtime = build_runtime(migrated_sqlite(path), tmp_path / "data")
    try:
        runtime.audit.record(AuditEntry(actor="tester", action="recording.view"))
        delete_sqlite(path)
        with pytest.raises(CatalogueUnavailable, match=r"the file is gone.*access is refused"):
            runtime.audit.record(AuditEntry(actor="tester", action="recording.view"))
        with pytest.raises(CatalogueUnavailable, match="the file is gone"):
            runtime.audit.check_ready()
    finally:
        close_runtime(runtime)


def test_api_on_either_backend_refuses_another_installation(
    empty_catalogue_url: str, tmp_path: Path
) -> None:
    runtime = build_runtime(empty_catalogue_url, tmp_path / "data")
    try:
        role_tokens = tokens(runtime)
        recording = add_recording(runtime)
        with ApiClient(runtime, role_tokens) as api:
            handler = api.as_role(Role.DISPUTE_HANDLER)
            url = f"/api/v1/recordings/{recording.id}"
            assert handler.get(url).status_code == 200
            assert api.anonymous().get("/healthz").status_code == 200
            with transaction(runtime.sessions) as session:
                before = session.scalar(select(Installation.heartbeat_at))
            assert before is not None  # /healthz committed a heartbeat
            new_id = change_installation_id(empty_catalogue_url)
            health = api.anonymous().get("/healthz")
            assert health.status_code == 503
            assert health.json()["catalogue"] == "replaced"
            response = handler.get(url)  # refused from then on, without waiting for a re-read
            assert response.status_code == 503
            assert str(new_id) in response.json()["error"]["message"]
    finally:
        close_runtime(runtime)
