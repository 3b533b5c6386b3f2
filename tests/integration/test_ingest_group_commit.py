"""Group commit: a worker catalogues the recordings it stored in one transaction.

The spool world of ``test_ingest_spool`` (three archivable recordings among
bad files and one still being written), both catalogues, both stores. The
recordings a drain stores are committed together, and only then is each
acknowledged to its source; a commit that fails releases every recording of
its group and loses nothing; a store that fails mid-group leaves what was
stored before it committed and acknowledged.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from recarchive.access.models import Role
from recarchive.catalogue.intake import WorkItem, WorkState
from recarchive.errors import CatalogueUnavailable, StoreUnavailable
from recarchive.ingest import services
from recarchive.ingest.services import Pipeline
from recarchive.ingest.sources import build_sources
from recarchive.retention.holds import place_hold
from recarchive.retention.rules import CLASS_TAG
from recarchive.runtime import Runtime
from tests.actors import staff
from tests.integration.test_ingest_spool import (  # the spool world of those tests
    DAY,
    GOOD_IN,
    GOOD_OUT,
    NO_CDR,
    audio,
    recordings,
    runtime,
    spool,
    store_settings,
)

__all__ = ["audio", "runtime", "spool", "store_settings"]  # fixtures, imported to be found

ARCHIVABLE = (GOOD_IN, GOOD_OUT, NO_CDR)
LATER = dt.timedelta(hours=2)  # every lease and retry backoff has run out


def at_source(spool: Path) -> set[str]:
    return {name for name in ARCHIVABLE if (spool / "monitor" / DAY / name).exists()}


def with_group(runtime: Runtime, size: int) -> Pipeline:
    ingest = runtime.settings.ingest.model_copy(update={"group_commit": size})
    runtime.settings = runtime.settings.model_copy(update={"ingest": ingest})
    return Pipeline(runtime, build_sources(runtime.settings))


def watch_commits(monkeypatch: pytest.MonkeyPatch, fail_at: int | None = None) -> list[Any]:
    """The session each recording is catalogued in; the ``fail_at``-th call fails.

    The sessions are kept (not their ids), so that no two are ever the same object.
    """
    sessions: list[Any] = []
    catalogue = services.catalogue_recording

    def watched(session: Any, *args: Any, **kwargs: Any) -> bool:
        sessions.append(session)
        if len(sessions) == fail_at:
            raise CatalogueUnavailable("catalogue sqlite:///…: gone for a moment")
        return catalogue(session, *args, **kwargs)

    monkeypatch.setattr(services, "catalogue_recording", watched)
    return sessions


@pytest.mark.parametrize("size", [16, 1])
def test_a_drain_commits_its_stored_recordings_together_then_acknowledges_them(
    runtime: Runtime, spool: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    pipeline = with_group(runtime, size)
    sessions = watch_commits(monkeypatch)
    catalogued_at_first_report: list[int] = []

    def reported(outcome: str) -> None:
        if outcome == "archived" and not catalogued_at_first_report:
            catalogued_at_first_report.append(len(recordings(runtime)))
            assert at_source(spool) == set(ARCHIVABLE) - set(recordings(runtime))

    pipeline.discover()
    summary = pipeline.drain(on_item=reported)
    assert summary.archived == 3
    assert len(sessions) == 3
    assert len({id(session) for session in sessions}) == (1 if size > 1 else 3)
    assert catalogued_at_first_report == [3 if size > 1 else 1]
    assert set(recordings(runtime)) == set(ARCHIVABLE)
    assert at_source(spool) == set()


def test_a_group_whose_commit_fails_is_released_whole_and_archived_later(
    runtime: Runtime, spool: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = with_group(runtime, 16)
    pipeline.discover()
    watch_commits(monkeypatch, fail_at=2)
    with pytest.raises(CatalogueUnavailable):
        pipeline.drain()
    monkeypatch.undo()
    assert recordings(runtime) == {}
    assert at_source(spool) == set(ARCHIVABLE)  # nothing acknowledged
    with runtime.sessions() as session:
        items = session.scalars(select(WorkItem)).all()
    assert not [i for i in items if i.state is WorkState.CLAIMED]
    assert len(list(runtime.store.list("recordings/"))) == 3  # stored, not catalogued

    later = dt.datetime.now(dt.UTC) + LATER
    while (result := pipeline.process_next(now=later)) is not None:
        assert result[0] != "retry"
    archived = recordings(runtime)
    assert set(archived) == set(ARCHIVABLE)
    assert at_source(spool) == set()
    keys = sorted(info.key for info in runtime.store.list("recordings/"))
    assert keys == sorted(row.object_key for row in archived.values())  # the same objects


def test_what_was_stored_before_the_store_failed_is_committed_and_acknowledged(
    runtime: Runtime, spool: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = with_group(runtime, 16)
    pipeline.discover()
    stored: list[str] = []
    store_audio = services.store_audio

    def failing(*args: Any, **kwargs: Any) -> Any:
        if len(stored) == 2:
            raise StoreUnavailable("object store http://127.0.0.1:1: gone")
        kept = store_audio(*args, **kwargs)
        stored.append(args[2])
        return kept

    monkeypatch.setattr(services, "store_audio", failing)
    with pytest.raises(StoreUnavailable):
        pipeline.drain()
    monkeypatch.undo()
    archived = recordings(runtime)
    assert len(archived) == 2
    assert sorted(row.object_key for row in archived.values()) == sorted(stored)
    assert at_source(spool) == set(ARCHIVABLE) - set(archived)

    later = dt.datetime.now(dt.UTC) + LATER
    while pipeline.process_next(now=later) is not None:
        pass
    assert set(recordings(runtime)) == set(ARCHIVABLE)
    assert at_source(spool) == set()


@pytest.mark.parametrize("size", [16, 1])
def test_a_hold_placed_while_a_call_is_stored_tags_its_object_held(
    runtime: Runtime, spool: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    """The caller's customer is held after ingest decided the tag, before the row is committed."""
    pipeline = with_group(runtime, size)
    pipeline.discover()
    store_audio = services.store_audio

    def hold_meanwhile(*args: Any, **kwargs: Any) -> Any:
        kept = store_audio(*args, **kwargs)
        if Path(args[3]).name == GOOD_IN:  # from +358401234567, customer C-1
            place_hold(
                runtime, case_ref="D-7", reason="billing dispute", customer_id="C-1",
                actor=staff("handler", Role.DISPUTE_HANDLER),
            )  # fmt: skip
        return kept

    monkeypatch.setattr(services, "store_audio", hold_meanwhile)
    pipeline.drain()
    archived = recordings(runtime)
    held_class = runtime.settings.retention.held_class
    tags = {
        name: runtime.store.get_tags(row.object_key)[CLASS_TAG] for name, row in archived.items()
    }
    assert tags[GOOD_IN] == held_class
    assert archived[GOOD_IN].customer_id == "C-1"
    assert tags[NO_CDR] != held_class  # not the held customer's call
