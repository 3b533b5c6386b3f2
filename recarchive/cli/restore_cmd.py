"""``recarchive restore-check``: replay the deletions a restored catalogue backup does not know."""

from __future__ import annotations

import click

from recarchive.cli.common import AppContext, pass_app
from recarchive.retention.deletion_record import replay_deletions


@click.command("restore-check")
@pass_app
def restore_check_command(app: AppContext) -> None:
    """Delete again what was expired or erased since the catalogue's backup. Irreversible.

    Reads the record of deletions kept outside the catalogue (next to the
    audit anchors) and, for every recording it names that the catalogue
    still holds, deletes its object, destroys its data key and leaves its
    tombstone. Run it after restoring a catalogue backup; `recarchive serve`
    refuses to start until it has. Safe to run any time: with nothing to
    replay it changes nothing.
    """
    report = replay_deletions(app.runtime)
    click.echo(f"deletions recorded outside the catalogue: {report.recorded}")
    click.echo(f"replayed now: {len(report.replayed)}")
    for recording_id in report.replayed:
        click.echo(f"  deleted again: {recording_id}")
    if report.failed:
        for recording_id, reason in report.failed.items():
            click.echo(f"not deleted yet: {recording_id}: {reason}", err=True)
        raise SystemExit(3)
