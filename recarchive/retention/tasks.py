"""The nightly job: expiry every night at a set local time, by exactly one process.

:func:`run_nightly_if_due` is called by ``recarchive scheduler`` and between
the passes of the long-running ``recarchive ingest``. The job is due once
per day at ``retention.expiry_time`` in ``general.timezone`` (02:30
Europe/Helsinki by default); a run missed while everything was down is
caught up at the next check. Each run is recorded in the audit log
(``nightly.run``, with its report), which is also how the next check knows
that today's run is done.

Exactly one runner: on PostgreSQL a session-level advisory lock
(``pg_try_advisory_lock``) is held for the whole run, so any number of
processes on any number of machines may check; on SQLite (one machine) a
lock file under the data directory does the same.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import logging
from collections.abc import Iterator
from zoneinfo import ZoneInfo

from sqlalchemy import select, text

from recarchive.access.audit import append_event
from recarchive.access.models import AuditEvent
from recarchive.catalogue.database import transaction, utcnow
from recarchive.parts import Archive, Sessions
from recarchive.private_files import make_private_dir, open_private
from recarchive.retention.events import NIGHTLY_EXPIRY_DONE, NightlyExpiryDone
from recarchive.retention.expiry import ExpiryReport, expire_recordings
from recarchive.retention.reconcile import reconcile_store
from recarchive.runtime import Runtime

logger = logging.getLogger(__name__)

NIGHTLY_ACTION = "nightly.run"
_LOCK_KEY = 0x72636E74  # "rcnt": one nightly runner per catalogue


@dataclasses.dataclass(frozen=True)
class NightlyRun:
    scheduled: dt.datetime
    expiry: ExpiryReport


def last_scheduled(now: dt.datetime, at: dt.time, zone: ZoneInfo) -> dt.datetime:
    """The most recent scheduled moment at or before ``now`` (aware, UTC)."""
    local = now.astimezone(zone)
    today = dt.datetime.combine(local.date(), at, tzinfo=zone)
    scheduled = today if today <= local else today - dt.timedelta(days=1)
    return scheduled.astimezone(dt.UTC)


def next_scheduled(now: dt.datetime, at: dt.time, zone: ZoneInfo) -> dt.datetime:
    """The first scheduled moment after ``now`` (aware, UTC)."""
    local = last_scheduled(now, at, zone).astimezone(zone)
    following = dt.datetime.combine(local.date() + dt.timedelta(days=1), at, tzinfo=zone)
    return following.astimezone(dt.UTC)


def nightly_done_at(runtime: Sessions, scheduled: dt.datetime) -> dt.datetime | None:
    """When the nightly run for ``scheduled`` finished (its audit entry), or None if it has not."""
    with runtime.sessions() as session:
        events = session.execute(
            select(AuditEvent.at, AuditEvent.details)
            .where(AuditEvent.action == NIGHTLY_ACTION, AuditEvent.at >= scheduled)
            .order_by(AuditEvent.at)
            .limit(50)
        )
        for row in events:
            if row.details.get("scheduled") == scheduled.isoformat():
                done_at: dt.datetime = row.at
                return done_at
    return None


@dataclasses.dataclass(frozen=True)
class NightlyState:
    """Where the nightly job stands at a moment: why a check did nothing, and what comes next."""

    #: The run that is due at that moment (the last scheduled one).
    scheduled: dt.datetime
    #: When that run finished; None when it has not (another process runs it now).
    done_at: dt.datetime | None
    #: The following scheduled run.
    following: dt.datetime


def nightly_state(runtime: Archive, *, now: dt.datetime | None = None) -> NightlyState:
    """The due run, whether (and when) it was done, and the next one."""
    now = now or utcnow()
    at = runtime.settings.retention.expiry_time
    zone = ZoneInfo(runtime.settings.general.timezone)
    scheduled = last_scheduled(now, at, zone)
    return NightlyState(
        scheduled=scheduled,
        done_at=nightly_done_at(runtime, scheduled),
        following=next_scheduled(now, at, zone),
    )


def _done(runtime: Sessions, scheduled: dt.datetime) -> bool:
    return nightly_done_at(runtime, scheduled) is not None


@contextlib.contextmanager
def _single_runner(runtime: Runtime) -> Iterator[bool]:
    """Yield True when this process holds the nightly lock, False when another does."""
    engine = runtime.engine
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            got = bool(
                connection.execute(
                    text("SELECT pg_try_advisory_lock(:k)"), {"k": _LOCK_KEY}
                ).scalar()
            )
            connection.commit()
            try:
                yield got
            finally:
                if got:
                    connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
                    connection.commit()
        return
    path = runtime.settings.general.data_dir / "nightly.lock"
    make_private_dir(path.parent)
    with open_private(path, "ab") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_nightly_if_due(runtime: Runtime, *, now: dt.datetime | None = None) -> NightlyRun | None:
    """Run the nightly expiry, then reconciliation, if today's run is due and not done.

    Deletes irreversibly what :func:`~recarchive.retention.expiry.expire_recordings`
    deletes (cutoff: now), then publishes
    :data:`~recarchive.retention.events.NIGHTLY_EXPIRY_DONE` (privacy erases,
    irreversibly, what pending erasure requests wait for and no hold keeps any
    more), then turns rows whose objects the bucket's backstop removed into
    tombstones (:func:`~recarchive.retention.reconcile.reconcile_store`,
    which deletes no object by default) and deletes what writes that never
    finished left in the store, once older than ``storage.abandoned_after_hours``
    (cutoff: now minus that). Returns None when not due or when another
    process runs it.
    """
    now = now or utcnow()
    settings = runtime.settings
    zone = ZoneInfo(settings.general.timezone)
    scheduled = last_scheduled(now, settings.retention.expiry_time, zone)
    if _done(runtime, scheduled):
        return None
    with _single_runner(runtime) as mine:
        if not mine or _done(runtime, scheduled):
            return None
        logger.info("nightly_started", extra={"scheduled": scheduled.isoformat()})
        report = expire_recordings(runtime, now=max(scheduled, now))
        after_expiry = NIGHTLY_EXPIRY_DONE.publish(NightlyExpiryDone(runtime, scheduled))
        reconciled = reconcile_store(runtime, now=now)
        with transaction(runtime.sessions) as session:
            append_event(
                session,
                actor="system",
                action=NIGHTLY_ACTION,
                details={
                    "scheduled": scheduled.isoformat(),
                    "cutoff": report.cutoff.isoformat(),
                    "deleted": report.deleted,
                    "bytes": report.bytes_deleted,
                    "held_skipped": report.held_skipped,
                    "failed": report.failed,
                    "unsettled": report.unsettled,
                    "by_rule": dict(report.by_rule),
                    **{name: n for counts in after_expiry for name, n in counts.items()},
                    "reconcile": {
                        "tombstoned_backstop": reconciled.tombstoned_backstop,
                        "tombstoned_missing": reconciled.tombstoned_missing,
                        "finished_expiry": reconciled.finished_expiry,
                        "orphans": reconciled.orphans,
                        "swept": reconciled.swept,
                        "swept_bytes": reconciled.swept_bytes,
                    },
                },
            )
        logger.info(
            "nightly_done",
            extra={
                "deleted": report.deleted,
                "failed": report.failed,
                "unsettled": report.unsettled,
            },
        )
        return NightlyRun(scheduled=scheduled, expiry=report)
