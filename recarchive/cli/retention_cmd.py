"""``recarchive hold`` and ``recarchive expire``: suspend deletion, delete what is due."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from recarchive.catalogue.database import utcnow
from recarchive.cli.common import AppContext, human_size, parse_time, pass_app
from recarchive.cli.progress import progress
from recarchive.cli.staff import TOKEN_OPTION, staff_actor
from recarchive.errors import CatalogueReplaced, CatalogueUnavailable, StoreUnavailable
from recarchive.ingest.housekeeping import HousekeepingClock, housekeep_safely
from recarchive.lifecycle import Backoff, StopFlag
from recarchive.retention.apply import apply_policy
from recarchive.retention.expiry import check_clock, expire_recordings
from recarchive.retention.holds import list_holds, place_hold, release_hold
from recarchive.retention.tasks import next_scheduled, nightly_state, run_nightly_if_due


@click.group("hold")
def hold_group() -> None:
    """Place, release and list holds (disputes and legal claims suspend deletion)."""


@hold_group.command("add")
@click.argument("recording_ids", nargs=-1, type=click.UUID)
@click.option(
    "--customer",
    "customer_id",
    help="Hold every recording of this customer, "
    "including ones that arrive while the hold is open.",
)
@click.option("--case", "case_ref", required=True, help="Case reference (dispute or claim).")
@click.option("--reason", required=True, help="Why the recordings are held.")
@click.option("--until", "until_text", help="ISO 8601 time after which the hold lapses.")
@TOKEN_OPTION
@pass_app
def add_command(
    app: AppContext,
    recording_ids: tuple[uuid.UUID, ...],
    customer_id: str | None,
    case_ref: str,
    reason: str,
    until_text: str | None,
    token_file: Path | None,
) -> None:
    """Hold RECORDING_IDS (or --customer ID): they are not deleted until released.

    Placed by the member of staff whose token is given, as in the API.
    """
    summary = place_hold(
        app.runtime,
        case_ref=case_ref,
        reason=reason,
        actor=staff_actor(app, token_file),
        recording_ids=list(recording_ids),
        customer_id=customer_id,
        until=parse_time(until_text, "--until"),
    )
    scope = f"customer {customer_id}" if customer_id else "recordings"
    click.echo(f"hold {summary.hold.id} placed on {scope}: {summary.recordings} recording(s)")


@hold_group.command("release")
@click.argument("hold_id", type=click.UUID)
@click.option("--reason", default="case closed", show_default=True, help="Why it is released.")
@TOKEN_OPTION
@pass_app
def release_command(
    app: AppContext, hold_id: uuid.UUID, reason: str, token_file: Path | None
) -> None:
    """Release a hold; recordings past their retention go at the next expiry run."""
    actor = staff_actor(app, token_file)
    summary = release_hold(app.runtime, hold_id, actor=actor, reason=reason)
    click.echo(f"hold {hold_id} released ({summary.recordings} recording(s) covered)")


@hold_group.command("list")
@click.option("--all", "include_released", is_flag=True, help="Include released holds.")
@TOKEN_OPTION
@pass_app
def list_command(app: AppContext, include_released: bool, token_file: Path | None) -> None:
    """List holds, newest first."""
    actor = staff_actor(app, token_file)
    for hold, covered in list_holds(app.runtime, actor, include_released=include_released):
        scope = f"customer {hold.customer_id}" if hold.customer_id else "recordings"
        if hold.case_id is not None:
            scope = f"dispute case's {scope}"
        state = f"released {hold.released_at:%Y-%m-%d}" if hold.released_at else "open"
        until = f" until {hold.until:%Y-%m-%d}" if hold.until else ""
        click.echo(
            f"{hold.id}  {hold.placed_at:%Y-%m-%d}  {hold.case_ref:<20} {scope} "
            f"({covered}){until}  {state}  by {hold.placed_by}: {hold.reason}"
        )


@click.command("expire")
@click.option("--dry-run", is_flag=True, help="Say what would be deleted; delete nothing.")
@click.option("--now", "now_text", help="Simulate the clock (ISO 8601 time with zone).")
@click.option(
    "--force",
    is_flag=True,
    help="Accept a --now earlier than the newest recording or more than a day ahead.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_app
def expire_command(
    app: AppContext, dry_run: bool, now_text: str | None, force: bool, as_json: bool
) -> None:
    """Delete, irreversibly, every recording past its retain_until that no hold covers.

    Objects go first, then catalogue rows, which leave tombstones (no
    personal data). Safe to interrupt, to run again, and to run from several
    places at once (each run deletes and reports its own share). Exit status
    1 when the store kept some objects or failed part-way (see "failed" and
    "unsettled"; the next run retries and settles them).
    """
    now = parse_time(now_text, "--now")
    if now is not None:
        check_clock(app.runtime, now, force=force)
    with progress("expire", quiet=app.quiet) as report_progress:
        report = expire_recordings(
            app.runtime, now=now, dry_run=dry_run, on_progress=report_progress
        )
    if as_json:
        click.echo(json.dumps({
            "cutoff": report.cutoff.isoformat(), "dry_run": report.dry_run,
            "deleted": report.deleted, "bytes": report.bytes_deleted,
            "held_skipped": report.held_skipped, "failed": report.failed,
            "unsettled": report.unsettled, "by_rule": dict(report.by_rule),
            "seconds": round(report.seconds, 3),
        }, sort_keys=True))  # fmt: skip
    else:
        verb = "would delete" if dry_run else "deleted"
        click.echo(f"cutoff {report.cutoff.isoformat()}: {verb} {report.deleted} recording(s), "
                   f"{human_size(report.bytes_deleted)}")  # fmt: skip
        for rule, count in sorted(report.by_rule.items()):
            click.echo(f"  rule {rule:<20} {count}")
        click.echo(f"held, not deleted: {report.held_skipped}")
        if report.failed:
            click.echo(f"failed, retried next run: {report.failed}")
        if report.unsettled:
            click.echo(f"unsettled (store failed mid-way), settled next run: {report.unsettled}")
    if report.failed or report.unsettled:
        raise SystemExit(1)


@click.group("retention")
def retention_group() -> None:
    """The retention policy."""


@retention_group.command("apply")
@click.option("--execute", is_flag=True, help="Change retain_until (default: only report).")
@TOKEN_OPTION
@pass_app
def apply_command(app: AppContext, execute: bool, token_file: Path | None) -> None:
    """Recompute retain_until for every recording after a policy change.

    A dry run unless --execute: says how many recordings each change
    affects. Refused when held recordings would be kept for a shorter time.
    --execute acts as the privacy officer or admin whose token is given.
    """
    actor = staff_actor(app, token_file) if execute else None  # a change is a person's
    report = apply_policy(app.runtime, execute=execute, actor=actor)
    click.echo(f"examined {report.examined} recording(s); {report.changed} change(s)")
    for (old, new, direction), count in sorted(report.changes.items()):
        click.echo(f"  {old} -> {new} ({direction}): {count}")
    if not execute and report.changed:
        click.echo("dry run: nothing changed; add --execute to apply")
    if report.retag_failures:
        click.echo(f"objects not retagged (store errors): {report.retag_failures}", err=True)


@click.command("scheduler")
@click.option("--once", is_flag=True, help="Run the nightly job now if it is due, then exit.")
@pass_app
def scheduler_command(app: AppContext, once: bool) -> None:
    """Run the nightly expiry every night at retention.expiry_time (one runner at a time).

    Any number of schedulers (and long-running ingests) may run: a lock
    (a PostgreSQL advisory lock, or a lock file on SQLite) lets exactly one
    of them run each night's job. After each nightly run, and hourly, it
    also housekeeps ingest: spool done_dir copies and quarantine entries
    past their time are deleted. SIGTERM stops it between jobs. While the
    catalogue or the store cannot be reached it logs so, waits and tries
    again; --once stops with one line instead.
    """
    if not once:
        app.run_as_service()
    settings = app.settings
    zone = ZoneInfo(settings.general.timezone)
    stop = StopFlag()
    stop.install()
    housekeeping = HousekeepingClock()
    backoff = Backoff("scheduler")
    while True:
        try:
            _scheduler_tick(app, housekeeping, once=once)
        except CatalogueReplaced:
            raise  # another catalogue is at its place: a restart opens it
        except (CatalogueUnavailable, StoreUnavailable) as exc:
            if once:
                raise
            wait = backoff.failed(exc.message)  # logged when the outage starts and ends
        else:
            backoff.succeeded()
            now = utcnow()
            wake = next_scheduled(now, settings.retention.expiry_time, zone)
            wait = min(max(1.0, (wake - now).total_seconds()), 300.0)
        if once or stop():
            return
        stop.sleep(wait)
        if stop():
            return


def _echo_nothing_due(app: AppContext) -> None:
    """Say why ``scheduler --once`` ran no nightly job: done (when), or running elsewhere."""
    state = nightly_state(app.runtime)
    why = (
        "another process is running it now"
        if state.done_at is None
        else f"already done at {_local(app, state.done_at)}"
    )
    click.echo(
        f"nightly run for {_local(app, state.scheduled)}: {why}; "
        f"next run {_local(app, state.following)}"
    )


def _local(app: AppContext, moment: dt.datetime) -> str:
    """A moment in the installation's zone (general.timezone), to the minute."""
    return moment.astimezone(ZoneInfo(app.settings.general.timezone)).isoformat(timespec="minutes")


def _scheduler_tick(app: AppContext, housekeeping: HousekeepingClock, *, once: bool) -> None:
    """Run the nightly job if due, and housekeeping when due; print what was done."""
    run = run_nightly_if_due(app.runtime)
    if run is not None:
        click.echo(
            f"nightly run for {_local(app, run.scheduled)}: deleted {run.expiry.deleted}, "
            f"held {run.expiry.held_skipped}, failed {run.expiry.failed}, "
            f"unsettled {run.expiry.unsettled}"
        )
    elif once:
        _echo_nothing_due(app)
    if run is not None or housekeeping.due():
        cleaned = housekeep_safely(app.runtime)
        housekeeping.done()
        if cleaned is not None and (run is not None or once):
            click.echo(
                f"housekeeping: done_dir files deleted {cleaned.done.aged} (aged), "
                f"{cleaned.done.forgotten} (erased or expired calls); quarantine entries "
                f"deleted {cleaned.quarantine_resolved} (resolved), "
                f"{cleaned.quarantine_expired} (unresolved, past quarantine_max_days)"
            )
