"""Ingest housekeeping with real files and real catalogues (SQLite and PostgreSQL).

A spool with ``after_archive = "move"`` is ingested the way ``recarchive
ingest --once`` does it; then erasure, expiry and the passing of time
(injected, never slept) decide which archived originals in ``done_dir`` and
which quarantine entries the housekeeping deletes.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from recarchive.access.models import Role
from recarchive.access.services import authenticate
from recarchive.access.users import add_user
from recarchive.catalogue.database import create_catalogue_engine, transaction, utcnow
from recarchive.catalogue.intake import QuarantineEntry
from recarchive.catalogue.migrate import upgrade_schema
from recarchive.catalogue.models import Recording
from recarchive.config import Settings, load_settings
from recarchive.ingest.housekeeping import HousekeepingClock, housekeep_ingest
from recarchive.ingest.quarantine import retry_entry
from recarchive.ingest.tasks import run_ingest
from recarchive.privacy.erasure import erase_subject
from recarchive.privacy.subjects import SubjectQuery
from recarchive.retention.expiry import expire_recordings
from recarchive.runtime import Runtime
from tests.actors import ADMIN
from tests.integration.test_ingest_spool import DAY, add_customers, audio, cdr_line, put

__all__ = ["audio"]  # the module's recordings fixture, made once

#: Two calls of customer C-1 (from +358401234567), one of C-2 (+358509990000).
FIRST = "in-0201234000-0401234567-20260314-112653-1742211234.117.wav"
SECOND = "in-0201234000-0401234567-20260314-121500-1742214900.118.wav"
OTHER = "in-0201234000-0509990000-20260314-130000-1742216400.119.wav"
EMPTY = "in-0201234000-0405556666-20260314-140000-1742220000.160.wav"
CALLS = {
    FIRST: ("1742211234.117", "2026-03-14 11:26:53", "0401234567"),
    SECOND: ("1742214900.118", "2026-03-14 12:15:00", "0401234567"),
    OTHER: ("1742216400.119", "2026-03-14 13:00:00", "0509990000"),
}


def make_settings(
    base: Path, catalogue_url: str, *, done_keep_days: int, done_dir: Path | None = None
) -> Settings:
    config = base / "recarchive.toml"
    config.write_text(
        f'[general]\ndata_dir = "{base / "var"}"\n'
        f'[catalogue]\nurl = "{catalogue_url}"\n'
        '[storage]\nbackend = "filesystem"\n'
        "[ingest]\nsettle_s = 5\nlease_s = 60\n"
        "[[sources]]\n"
        'kind = "spool"\nname = "pbx"\n'
        f'path = "{base / "monitor"}"\ncdr_path = "{base / "cdr" / "Master.csv"}"\n'
        f'after_archive = "move"\ndone_dir = "{done_dir or base / "done"}"\n'
        f"done_keep_days = {done_keep_days}\n",
        encoding="utf-8",
    )
    return load_settings(config, env={})


@pytest.fixture
def spool(tmp_path: Path, audio: dict[str, Path]) -> Path:
    day = tmp_path / "monitor" / DAY
    for name in CALLS:
        put(day / name, audio["pcm"])
    put(day / EMPTY, b"")
    cdr = tmp_path / "cdr" / "Master.csv"
    cdr.parent.mkdir()
    lines = [
        cdr_line(
            uniqueid,
            start,
            src=number,
            dst="0201234000",
            context="from-pstn",
            channel="PJSIP/trunk-1",
            dstchannel="PJSIP/2001-2",
        )
        for uniqueid, start, number in CALLS.values()
    ]
    cdr.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path


def open_runtime(
    spool: Path, catalogue_url: str, *, done_keep_days: int = 7, done_dir: Path | None = None
) -> Runtime:
    settings = make_settings(spool, catalogue_url, done_keep_days=done_keep_days, done_dir=done_dir)
    runtime = Runtime(settings)
    runtime.store.create()
    return runtime


@pytest.fixture
def catalogue(empty_catalogue_url: str) -> str:
    engine = create_catalogue_engine(empty_catalogue_url)
    upgrade_schema(engine)
    engine.dispose()
    return empty_catalogue_url


@pytest.fixture
def runtime(spool: Path, catalogue: str) -> Iterator[Runtime]:
    runtime = open_runtime(spool, catalogue)
    add_customers(
        runtime,
        {"C-1": ("Asiakas Yksi", "+358401234567"), "C-2": ("Asiakas Kaksi", "+358509990000")},
    )
    summary = run_ingest(runtime.settings, once=True)
    assert summary.archived == 3
    yield runtime
    runtime.close()


def done_files(spool: Path) -> set[str]:
    done = spool / "done"
    return {p.relative_to(done).as_posix() for p in done.rglob("*") if not p.is_dir()}


def in_done(*names: str) -> set[str]:
    return {f"{DAY}/{name}" for name in names}


def test_a_moved_file_is_stamped_with_the_time_of_the_move(runtime: Runtime, spool: Path) -> None:
    assert done_files(spool) == in_done(FIRST, SECOND, OTHER)
    moved = (spool / "done" / DAY / FIRST).stat().st_mtime
    assert abs(moved - utcnow().timestamp()) < 120  # not the recording's own mtime (March)


def test_erasure_deletes_the_customers_done_copies_at_once(runtime: Runtime, spool: Path) -> None:
    officer = authenticate(runtime, add_user(runtime, "officer", Role.PRIVACY_OFFICER,
                                             actor=ADMIN).token)  # fmt: skip

    report = erase_subject(runtime, officer, SubjectQuery(customer_id="C-1"))

    assert len(report.erased) == 2
    assert done_files(spool) == in_done(OTHER), "the erased calls' copies must go at once"
    with runtime.sessions() as session:
        assert session.scalars(select(Recording.customer_id)).all() == ["C-2"]
    again = run_ingest(runtime.settings, once=True)  # nothing comes back
    assert again.archived == 0
    assert done_files(spool) == in_done(OTHER)


def test_expired_calls_copies_go_at_the_next_sweep_whatever_done_keep_days(
    spool: Path, catalogue: str, runtime: Runtime
) -> None:
    keeping = open_runtime(spool, catalogue, done_keep_days=3650)
    try:
        expired = expire_recordings(keeping, now=dt.datetime(2027, 3, 15, tzinfo=dt.UTC))
        assert expired.deleted == 3
        assert done_files(spool) == in_done(FIRST, SECOND, OTHER)  # expiry touches no file

        report = housekeep_ingest(keeping)

        assert report.done.forgotten == 3
        assert report.done.aged == 0
        assert done_files(spool) == set()
        assert (spool / "done").is_dir()
        assert not (spool / "done" / DAY).exists(), "emptied directories are pruned"
    finally:
        keeping.close()


def test_done_copies_go_after_done_keep_days_and_not_before(runtime: Runtime, spool: Path) -> None:
    week_ago = (utcnow() - dt.timedelta(days=8)).timestamp()
    os.utime(spool / "done" / DAY / SECOND, (week_ago, week_ago))  # moved eight days ago

    first = housekeep_ingest(runtime)
    assert (first.done.aged, first.done.forgotten, first.done.kept) == (1, 0, 2)
    assert done_files(spool) == in_done(FIRST, OTHER)

    later = housekeep_ingest(runtime, now=utcnow() + dt.timedelta(days=6))
    assert later.done.aged == 0
    assert done_files(spool) == in_done(FIRST, OTHER)

    due = housekeep_ingest(runtime, now=utcnow() + dt.timedelta(days=7, minutes=5))
    assert due.done.aged == 2
    assert done_files(spool) == set()


def test_done_keep_days_zero_deletes_at_the_next_sweep(
    spool: Path, catalogue: str, runtime: Runtime
) -> None:
    prompt = open_runtime(spool, catalogue, done_keep_days=0)
    try:
        assert housekeep_ingest(prompt).done.aged == 3
        assert done_files(spool) == set()
    finally:
        prompt.close()


def test_links_in_done_dir_are_neither_followed_nor_deleted(
    runtime: Runtime, spool: Path, audio: dict[str, Path]
) -> None:
    outside = spool / "outside"
    outside_file = put(outside / "in-0201234000-0407770000-20260314-150000-1.2.wav", audio["pcm"])
    outside_day = put(outside / "day" / "in-0201234000-0407770001-20260314-150100-1.3.wav",
                      audio["pcm"])  # fmt: skip
    link = spool / "done" / DAY / "in-0201234000-0407770000-20260314-150000-1.2.wav"
    link.symlink_to(outside_file)
    dir_link = spool / "done" / "2026" / "linked"
    dir_link.symlink_to(outside / "day", target_is_directory=True)
    long_after = utcnow() + dt.timedelta(days=400)

    report = housekeep_ingest(runtime, now=long_after)

    assert report.done.aged == 3
    assert report.done.skipped == 1
    assert outside_file.exists(), "nothing outside done_dir is touched"
    assert outside_day.exists(), "nothing outside done_dir is touched"
    assert link.is_symlink()
    assert dir_link.is_symlink()


def test_a_done_dir_holding_the_spool_is_not_swept(
    spool: Path, catalogue: str, runtime: Runtime
) -> None:
    wrong = open_runtime(spool, catalogue, done_keep_days=0, done_dir=spool)
    try:
        report = housekeep_ingest(wrong, now=utcnow() + dt.timedelta(days=400))
        assert report.unswept == {"pbx": "source pbx: done_dir contains the spool; not swept"}
        assert (spool / "monitor" / DAY / EMPTY).exists()
        assert done_files(spool) == in_done(FIRST, SECOND, OTHER)
    finally:
        wrong.close()


def quarantine(runtime: Runtime) -> list[QuarantineEntry]:
    with runtime.sessions() as session:
        return list(session.scalars(select(QuarantineEntry).order_by(QuarantineEntry.created_at)))


def test_quarantine_entries_are_purged_per_the_two_settings(runtime: Runtime, spool: Path) -> None:
    [zero] = quarantine(runtime)
    assert zero.reason == "zero_byte"
    with transaction(runtime.sessions) as session:
        session.add(
            QuarantineEntry(
                source="pbx", source_ref="cdr:Master.csv:9", reason="malformed_cdr", detail="line 9"
            )
        )
    retry_entry(runtime.sessions, zero.id, actor=ADMIN)  # resolved; quarantined again
    run_ingest(runtime.settings, once=True)
    now = utcnow()
    assert len(quarantine(runtime)) == 3

    assert housekeep_ingest(runtime, now=now + dt.timedelta(days=29)).quarantine_resolved == 0
    month = housekeep_ingest(runtime, now=now + dt.timedelta(days=31))
    assert (month.quarantine_resolved, month.quarantine_expired) == (1, 0)
    left = quarantine(runtime)
    assert len(left) == 2
    assert all(entry.resolved_at is None for entry in left)
    assert housekeep_ingest(runtime, now=now + dt.timedelta(days=364)).quarantine_expired == 0

    year = housekeep_ingest(runtime, now=now + dt.timedelta(days=366))

    assert year.quarantine_expired == 2
    assert quarantine(runtime) == []
    assert (spool / "monitor" / DAY / EMPTY).exists(), "the original stays at the source"
    assert run_ingest(runtime.settings, once=True).quarantined == {}  # not reported again


def test_the_housekeeping_clock_runs_first_then_hourly() -> None:
    now = [1000.0]
    clock = HousekeepingClock(clock=lambda: now[0])
    assert clock.due()
    clock.done()
    now[0] += 3599
    assert not clock.due()
    now[0] += 1
    assert clock.due()
