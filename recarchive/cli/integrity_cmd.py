"""``recarchive reconcile`` and ``recarchive verify``: store and catalogue agree, data intact."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import click

from recarchive.cli.common import AppContext, human_size, pass_app
from recarchive.cli.progress import progress
from recarchive.qa.clip_reconcile import ClipReconcileReport, reconcile_clips
from recarchive.retention.integrity import verify_integrity
from recarchive.retention.reconcile import reconcile_store

DEFAULT_SAMPLE = 100


def _ids(title: str, count: int, shown: list[str]) -> None:
    click.echo(f"{title}: {count}")
    for item in shown:
        click.echo(f"  {item}")
    if count > len(shown):
        click.echo(f"  ... and {count - len(shown)} more (the audit log has every one)")


@click.command("reconcile")
@click.option(
    "--delete-orphans",
    is_flag=True,
    help="Delete orphaned objects older than --orphan-min-age, and deleted objects that came back.",
)
@click.option(
    "--orphan-min-age",
    "min_age_hours",
    type=click.FloatRange(min=1),
    metavar="HOURS",
    default=24,
    show_default=True,
    help="Hours an object without a catalogue row must exist before it counts as an orphan "
    "(a younger one may be an ingest in progress).",
)
@click.option("--dry-run", is_flag=True, help="Report what would change; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_app
def reconcile_command(
    app: AppContext, delete_orphans: bool, min_age_hours: float, dry_run: bool, as_json: bool
) -> None:
    """Make the object store and the catalogue agree.

    A recording whose object is gone becomes a tombstone (rule
    bucket-lifecycle past its retain_until, missing-object before it or while
    held). Objects without a catalogue row are reported, and deleted only
    with --delete-orphans. What writes that never finished left in the store
    (temporary files, incomplete multipart uploads) is deleted once older
    than storage.abandoned_after_hours. The training clips (under clips/) are checked the
    same way: orphaned clip objects are reported and deleted with --delete-orphans, a clip
    whose object is gone is reported. Exit status 1 when a recording was lost before its
    time or while held, a deleted object came back, a clip's object is lost, or a deletion
    failed.
    """
    with progress("reconcile (objects)", quiet=app.quiet) as report_progress:
        report = reconcile_store(
            app.runtime,
            orphan_min_age=dt.timedelta(hours=min_age_hours),
            delete_orphans=delete_orphans,
            dry_run=dry_run,
            on_progress=report_progress,
        )
    clips = reconcile_clips(
        app.runtime,
        now=report.now,
        orphan_min_age=dt.timedelta(hours=min_age_hours),
        delete_orphans=delete_orphans,
        dry_run=dry_run,
    )
    if as_json:
        body = dataclasses.asdict(report)
        body["now"] = report.now.isoformat()
        body["needs_attention"] = report.needs_attention or clips.needs_attention
        body["clips"] = dataclasses.asdict(clips)
        click.echo(json.dumps(body, sort_keys=True))
    else:
        verb = "would tombstone" if dry_run else "tombstoned"
        click.echo(f"checked {report.checked_objects} object(s), {report.checked_rows} row(s)")
        click.echo(f"{verb}, object gone past retain_until: {report.tombstoned_backstop}")
        _ids(f"{verb}, LOST before retain_until", report.tombstoned_missing, report.missing_ids)
        _ids(f"{verb}, LOST while held", report.held_missing, report.held_missing_ids)
        if report.finished_expiry:
            click.echo(f"{verb}, interrupted deletion finished: {report.finished_expiry}")
        if report.deletion_in_progress:
            click.echo(f"left to the run deleting them now: {report.deletion_in_progress}")
        _ids("orphaned objects", report.orphans, report.orphan_keys)
        click.echo(f"younger orphans, left alone: {report.young_orphans}")
        _ids("deleted objects that came back", report.resurrected, report.resurrected_keys)
        swept = "would delete" if dry_run else "deleted"
        click.echo(
            f"{swept}, left by unfinished writes: {report.swept} ({human_size(report.swept_bytes)})"
        )
        if delete_orphans and not dry_run:
            click.echo(
                f"deleted: {report.orphans_deleted} orphan(s), "
                f"{report.resurrected_deleted} returned object(s); failed: {report.delete_failed}"
            )
        _clip_lines(clips, delete_orphans and not dry_run)
    if report.needs_attention or clips.needs_attention:
        raise SystemExit(1)


def _clip_lines(clips: ClipReconcileReport, deleting: bool) -> None:
    click.echo(
        f"training clips: checked {clips.checked_objects} object(s), {clips.checked_rows} row(s)"
    )
    _ids("orphaned clip objects", clips.orphans, clips.orphan_keys)
    click.echo(f"younger orphaned clip objects, left alone: {clips.young_orphans}")
    _ids("clips whose object is LOST", clips.missing, clips.missing_ids)
    if deleting:
        click.echo(
            f"deleted: {clips.orphans_deleted} orphaned clip object(s); "
            f"failed: {clips.delete_failed}"
        )


@click.command("verify")
@click.option(
    "--sample",
    type=click.IntRange(min=1),
    metavar="N",
    help=f"Check N random active recordings (the default, with N={DEFAULT_SAMPLE}).",
)
@click.option("--all", "all_", is_flag=True, help="Check every active recording.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_app
def verify_command(app: AppContext, sample: int | None, all_: bool, as_json: bool) -> None:
    """Read stored recordings back and compare SHA-256 and size with the catalogue.

    Mismatched and missing objects are recorded in the audit log, never
    repaired. Exit status 1 when any is found.
    """
    if all_ and sample is not None:
        raise click.UsageError("give --sample N or --all, not both")
    if not all_ and sample is None:
        sample = DEFAULT_SAMPLE
    with progress("verify", quiet=app.quiet) as report_progress:
        report = verify_integrity(
            app.runtime, sample=sample, all_=all_, on_progress=report_progress
        )
    if as_json:
        body = dataclasses.asdict(report)
        body["intact"] = report.intact
        click.echo(json.dumps(body, sort_keys=True))
    else:
        click.echo(
            f"checked {report.checked} recording(s): {report.ok} ok, "
            f"{human_size(report.bytes_read)} read"
        )
        _ids("MISMATCHED (sha256 or size)", report.mismatched, report.mismatched_ids)
        _ids("MISSING", report.missing, report.missing_ids)
        if report.unsettled:
            click.echo(
                f"being deleted (in progress, or unsettled until the next expiry), "
                f"not checked: {report.unsettled}"
            )
    if not report.intact:
        raise SystemExit(1)
