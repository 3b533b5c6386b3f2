"""``recarchive ingest``: pull recordings from the sources into the archive."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from recarchive.cli.common import AppContext, human_size, pass_app, work_remains
from recarchive.ingest.summary import IngestSummary
from recarchive.ingest.tasks import IngestIncomplete, run_ingest
from recarchive.lifecycle import StopFlag


@click.command("ingest")
@click.option("--once", is_flag=True, help="Drain what the sources hold now, then exit.")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes that archive recordings in parallel.",
)
@click.option(
    "--source",
    "sources",
    multiple=True,
    help="Only this configured source (repeatable). Default: every source.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_app
def ingest_command(
    app: AppContext, once: bool, workers: int, sources: tuple[str, ...], as_json: bool
) -> None:
    """Archive recordings from the configured sources.

    Runs until stopped (SIGTERM or Ctrl-C finish the recording in hand), or
    with --once until what is there now is done. Prints a summary at the end:
    archived, duplicates skipped, quarantined by reason, bytes in and out,
    what still waits. With --once, exit status 3 when items still wait
    (in backoff, still being written, claimed elsewhere) or recordings wait
    for their CDR row: the next run takes them.
    """
    if not once:
        app.run_as_service()
    settings = app.settings
    if not settings.sources:
        raise click.ClickException("no [[sources]] configured: see config.example.toml")
    stop = StopFlag()
    stop.install()
    bar: Any = None
    show_progress = sys.stderr.isatty() and workers == 1 and not as_json and not app.quiet

    def discovered(pending: int) -> None:
        nonlocal bar
        if show_progress and pending:
            if bar is not None:
                bar.render_finish()
            bar = click.progressbar(length=pending, label="archiving", file=sys.stderr)

    def item_done(_outcome: str) -> None:
        if bar is not None:
            bar.update(1)

    try:
        summary = run_ingest(
            settings,
            once=once,
            workers=workers,
            sources=list(sources) or None,
            on_discovered=discovered,
            on_item=item_done,
            stop=stop,
        )
    except IngestIncomplete as exc:
        _print_summary(exc.summary, as_json)
        raise
    finally:
        if bar is not None:
            bar.render_finish()
    _print_summary(summary, as_json)
    remains = []
    if summary.waiting != 0:
        how_many = "an unknown number of" if summary.waiting is None else str(summary.waiting)
        remains.append(f"{how_many} item(s) still waiting")
    if summary.awaiting_cdr:
        remains.append(
            f"{summary.awaiting_cdr} recording(s) waiting for their CDR row or contact record"
        )
    if summary.awaiting_leg:
        remains.append(f"{summary.awaiting_leg} split leg(s) waiting for their other leg")
    if once and remains:
        work_remains(f"{'; '.join(remains)}: the next run takes them")


def _print_summary(summary: IngestSummary, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary.as_dict(), sort_keys=True))
        return
    click.echo(f"discovered   {summary.discovered}")
    click.echo(f"archived     {summary.archived}")
    click.echo(f"duplicates   {summary.duplicates} (skipped)")
    click.echo(f"deferred     {summary.deferred} (still being written; next pass)")
    click.echo(f"ignored      {summary.ignored} (by a source's ignore rules)")
    click.echo(f"awaiting cdr {summary.awaiting_cdr} (no CDR row yet; next pass)")
    click.echo(f"from name    {summary.archived_without_record} (archived without a CDR row)")
    click.echo(f"awaiting leg {summary.awaiting_leg} (split leg without its other leg yet)")
    click.echo(f"lone legs    {summary.lone_legs} (split legs archived alone, mono)")
    click.echo(f"enriched     {summary.enriched} (archived from the name, then given their CDR)")
    click.echo(f"retried      {summary.retried}")
    total = sum(summary.quarantined.values())
    click.echo(f"quarantined  {total}")
    for reason, count in sorted(summary.quarantined.items()):
        click.echo(f"  {reason:<26} {count}")
    click.echo(f"bytes in     {human_size(summary.bytes_in)}")
    click.echo(f"bytes out    {human_size(summary.bytes_out)}")
    for name, reason in sorted(summary.unreadable_sources.items()):
        click.echo(f"unreadable   {name}: {reason}")
    waiting = (
        "unknown (the catalogue could not be asked)"
        if summary.waiting is None
        else (f"{summary.waiting} (queued: backoff, still being written or claimed elsewhere)")
    )
    click.echo(f"waiting      {waiting}")
    if summary.paused:
        click.echo(f"paused       {summary.paused} time(s), last: {summary.last_error}")
