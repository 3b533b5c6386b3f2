"""``recarchive quarantine``: what could not be archived, and retrying it."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import click

from recarchive.cli.common import AppContext, echo_list_summary, pass_app
from recarchive.cli.staff import TOKEN_OPTION, staff_actor
from recarchive.ingest.quarantine import counts_by_reason, list_entries, retry_entry


@click.group("quarantine")
def quarantine_group() -> None:
    """Inspect and retry quarantined input."""


@quarantine_group.command("list")
@click.option("--reason", help="Only entries with this reason code.")
@click.option("--source", help="Only entries from this source.")
@click.option("--all", "include_resolved", is_flag=True, help="Include retried entries.")
@click.option(
    "--limit",
    type=click.IntRange(1),
    default=1000,
    show_default=True,
    help="Show at most this many entries.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@pass_app
def list_command(
    app: AppContext,
    reason: str | None,
    source: str | None,
    include_resolved: bool,
    limit: int,
    as_json: bool,
) -> None:
    """List quarantine entries, oldest first, with the reason for each.

    The entries go to stdout; the count of open entries by reason follows on
    stderr, after a blank line (--json prints entries only).
    """
    entries = list_entries(
        app.runtime.sessions,
        reason=reason,
        source=source,
        include_resolved=include_resolved,
        limit=limit,
    )
    for entry in entries:
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "id": str(entry.id),
                        "created_at": entry.created_at.isoformat(),
                        "source": entry.source,
                        "source_ref": entry.source_ref,
                        "reason": entry.reason,
                        "detail": entry.detail,
                        "kept_at": entry.kept_at,
                        "resolution": entry.resolution,
                    }
                )
            )
        else:
            click.echo(
                f"{entry.id}  {entry.created_at:%Y-%m-%d %H:%M}  {entry.source:<12} "
                f"{entry.reason:<24} {entry.detail}"
            )
    if not as_json:
        counts = counts_by_reason(app.runtime.sessions)
        summary = ", ".join(f"{r} {n}" for r, n in counts.items()) or "none"
        echo_list_summary(f"open entries by reason: {summary}", after_rows=bool(entries))


@quarantine_group.command("retry")
@click.argument("entry_ids", nargs=-1, required=True, type=click.UUID)
@TOKEN_OPTION
@pass_app
def retry_command(
    app: AppContext, entry_ids: tuple[uuid.UUID, ...], token_file: Path | None
) -> None:
    """Put quarantined recordings back in the queue (after fixing the cause).

    An admin's action, with their token; each retry is audited.
    """
    actor = staff_actor(app, token_file)
    for entry_id in entry_ids:
        entry = retry_entry(app.runtime.sessions, entry_id, actor=actor)
        what = "queued again" if entry.work_item_id else "closed; reported again if still there"
        click.echo(f"{entry.id}: {what}")
