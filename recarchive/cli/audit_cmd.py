"""``recarchive audit``: check the hash chain of the audit log and export it."""

from __future__ import annotations

import json

import click
from sqlalchemy import select

from recarchive.access.audit import AuditChainBroken, entry_content, verify_chain
from recarchive.access.models import AuditEvent
from recarchive.cli.common import AppContext, parse_time, pass_app


@click.group("audit")
def audit_group() -> None:
    """The append-only, hash-chained audit log."""


@audit_group.command("verify")
@pass_app
def verify_command(app: AppContext) -> None:
    """Walk the whole log; exit 1 naming the first entry that breaks the chain."""
    report = verify_chain(app.runtime.sessions)
    if not report.intact:
        raise AuditChainBroken(
            f"audit log broken at entry {report.broken_at}: {report.problem} "
            f"({report.entries} entries read)"
        )
    click.echo(f"audit log intact: {report.entries} entries")


@audit_group.command("export")
@click.option("--from", "start_text", help="ISO 8601 time with zone: first entry to export.")
@click.option("--to", "end_text", help="ISO 8601 time with zone: export entries before this.")
@pass_app
def export_command(app: AppContext, start_text: str | None, end_text: str | None) -> None:
    """Print entries as JSON lines, hashes included, so that the chain can be re-checked."""
    start = parse_time(start_text, "--from")
    end = parse_time(end_text, "--to")
    statement = select(AuditEvent).order_by(AuditEvent.seq)
    if start is not None:
        statement = statement.where(AuditEvent.at >= start)
    if end is not None:
        statement = statement.where(AuditEvent.at < end)
    with app.runtime.sessions() as session:
        for event in session.scalars(statement.execution_options(yield_per=1000)):
            record = {"seq": event.seq, **entry_content(event), "hash": event.hash}
            click.echo(json.dumps(record, sort_keys=True, ensure_ascii=False, default=str))
