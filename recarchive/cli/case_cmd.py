"""``recarchive case``: dispute cases from a shell, named by their reference.

Every command acts as the member of staff whose token is given
(``--token-file`` or ``RECARCHIVE_USER_TOKEN``), through the same role
checks and audit entries as the API (docs/disputes.md).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import click

from recarchive.cli.common import AppContext, echo_list_summary, pass_app
from recarchive.cli.lookup_cmd import search_filters, search_options
from recarchive.cli.staff import TOKEN_OPTION, staff_actor
from recarchive.disputes.case_export import export_case
from recarchive.disputes.cases import (
    add_note,
    assign,
    close_case,
    list_cases,
    open_case,
    show_case,
)
from recarchive.disputes.linking import link_recordings, link_search, unlink_recording
from recarchive.disputes.views import CaseDetail, CaseSummary

_KINDS = ["billing", "contract", "complaint", "other"]


@click.group("case")
def case_group() -> None:
    """Dispute cases: the calls a dispute turns on, held while the case is open."""


def _local(app: AppContext, moment: Any) -> str:
    if moment is None:
        return "-"
    return str(moment.astimezone(app.settings.tz).strftime("%Y-%m-%d %H:%M"))


def _summary_line(app: AppContext, case: CaseSummary) -> str:
    return (
        f"{case.reference:<24} {case.kind:<9} {case.status:<6} {_local(app, case.opened_at)}  "
        f"{case.handler:<16} {case.recordings:>4} recording(s)  {case.document_ref or '-'}"
    )


def _echo_detail(app: AppContext, detail: CaseDetail) -> None:
    case = detail.summary
    click.echo(f"case {case.reference} ({case.kind}, {case.status}), id {case.id}")
    click.echo(f"customer {case.customer_id or '-'}, document {case.document_ref or '-'}")
    click.echo(
        f"handler {case.handler}; opened {_local(app, case.opened_at)} by {detail.opened_by}"
    )
    if case.closed_at is not None:
        click.echo(
            f"closed {_local(app, case.closed_at)} by {detail.closed_by}: {detail.close_reason}; "
            f"record kept until {_local(app, detail.delete_after)}"
        )
    if detail.hold is not None:
        state = "released" if detail.hold["released_at"] else "in force"
        click.echo(f"hold {detail.hold['id']} ({state}, {detail.hold['recordings']} recording(s))")
    for r in detail.recordings:
        others = f", {r.other_holds} other hold(s)" if r.other_holds else ""
        started = _local(app, r.started_at)
        click.echo(
            f"  {r.id}  {started}  {r.status:<8} {(r.agent or '-'):<12} "
            f"added by {r.added_by}{others}"
        )
    for note in detail.notes:
        click.echo(f"  note {note['at']} {note['author']}: {note['text']}")


def _done(app: AppContext, detail: CaseDetail, what: str) -> None:
    click.echo(f"case {detail.reference}: {what}")


@case_group.command("open")
@click.argument("reference")
@click.option("--kind", required=True, type=click.Choice(_KINDS), help="What the dispute is about.")
@click.option("--customer", "customer_id", help="The customer's id (in the customer directory).")
@click.option("--document", "document_ref", help="The invoice or contract disputed.")
@click.option("--handler", help="User handling the case (default: you).")
@TOKEN_OPTION
@pass_app
def open_command(
    app: AppContext,
    reference: str,
    kind: str,
    customer_id: str | None,
    document_ref: str | None,
    handler: str | None,
    token_file: Path | None,
) -> None:
    """Open a dispute case named REFERENCE; link its recordings with `case link`."""
    detail = open_case(
        app.runtime,
        reference=reference,
        kind=kind,
        actor=staff_actor(app, token_file),
        customer_id=customer_id,
        document_ref=document_ref,
        handler=handler,
    )
    _done(app, detail, f"opened (id {detail.id}), handled by {detail.summary.handler}")


@case_group.command("list")
@click.option(
    "--status",
    type=click.Choice(["open", "closed", "all"]),
    default="open",
    show_default=True,
    help="Which cases.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@TOKEN_OPTION
@pass_app
def list_command(app: AppContext, status: str, as_json: bool, token_file: Path | None) -> None:
    """List cases, newest first: reference, kind, status, opened, handler, recordings."""
    found = list_cases(app.runtime, actor=staff_actor(app, token_file), status=status)
    for case in found:
        if as_json:
            click.echo(json.dumps(case.as_dict(), ensure_ascii=False))
        else:
            click.echo(_summary_line(app, case))
    if not as_json:
        echo_list_summary(f"{len(found)} case(s)", after_rows=bool(found))


@case_group.command("show")
@click.argument("reference")
@click.option("--json", "as_json", is_flag=True, help="The case as one JSON object.")
@TOKEN_OPTION
@pass_app
def show_command(app: AppContext, reference: str, as_json: bool, token_file: Path | None) -> None:
    """Show a case: its recordings, hold and notes (audited as case.view)."""
    detail = show_case(app.runtime, reference, actor=staff_actor(app, token_file))
    if as_json:
        click.echo(json.dumps(detail.as_dict(), ensure_ascii=False))
    else:
        _echo_detail(app, detail)


@case_group.command("link")
@click.argument("reference")
@click.argument("recording_ids", nargs=-1, type=click.UUID)
@click.option(
    "--search",
    "by_search",
    is_flag=True,
    help="Link every recording the filters find (as `recarchive lookup`; at most 500).",
)
@search_options
@TOKEN_OPTION
@pass_app
def link_command(
    app: AppContext,
    /,
    reference: str,
    recording_ids: tuple[uuid.UUID, ...],
    by_search: bool,
    token_file: Path | None,
    **filters: Any,
) -> None:
    """Link RECORDING_IDS (or, with --search, what the filters find) to a case; they are held."""
    if by_search == bool(recording_ids):
        raise click.UsageError("give RECORDING_IDS or --search with filters (one of them)")
    actor = staff_actor(app, token_file)
    if by_search:
        detail = link_search(app.runtime, reference, search_filters(app, **filters), actor=actor)
    else:
        detail = link_recordings(app.runtime, reference, list(recording_ids), actor=actor)
    _done(app, detail, f"{len(detail.recordings)} recording(s) linked and held")


@case_group.command("unlink")
@click.argument("reference")
@click.argument("recording_id", type=click.UUID)
@TOKEN_OPTION
@pass_app
def unlink_command(
    app: AppContext, reference: str, recording_id: uuid.UUID, token_file: Path | None
) -> None:
    """Take a recording out of a case; it stays held only if another hold covers it."""
    detail = unlink_recording(
        app.runtime, reference, recording_id, actor=staff_actor(app, token_file)
    )
    _done(app, detail, f"recording {recording_id} unlinked")


@case_group.command("note")
@click.argument("reference")
@click.argument("text")
@TOKEN_OPTION
@pass_app
def note_command(app: AppContext, reference: str, text: str, token_file: Path | None) -> None:
    """Add a note to a case."""
    detail = add_note(app.runtime, reference, text, actor=staff_actor(app, token_file))
    _done(app, detail, f"note added ({len(detail.notes)} in all)")


@case_group.command("assign")
@click.argument("reference")
@click.argument("user")
@TOKEN_OPTION
@pass_app
def assign_command(app: AppContext, reference: str, user: str, token_file: Path | None) -> None:
    """Hand a case to USER (a dispute handler or privacy officer)."""
    detail = assign(app.runtime, reference, user, actor=staff_actor(app, token_file))
    _done(app, detail, f"handled by {detail.summary.handler}")


@case_group.command("close")
@click.argument("reference")
@click.option("--reason", required=True, help="Why the case is closed (recorded).")
@TOKEN_OPTION
@pass_app
def close_command(app: AppContext, reference: str, reason: str, token_file: Path | None) -> None:
    """Close a case and release its hold (only its own: other holds stay)."""
    detail = close_case(app.runtime, reference, reason=reason, actor=staff_actor(app, token_file))
    _done(app, detail, f"closed; record kept until {_local(app, detail.delete_after)}")


@case_group.command("export")
@click.argument("reference")
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The evidence package to write (a .zip; never overwritten).",
)
@click.option("--json", "as_json", is_flag=True, help="The export's summary as JSON.")
@TOKEN_OPTION
@pass_app
def export_command(
    app: AppContext, reference: str, output: Path, as_json: bool, token_file: Path | None
) -> None:
    """Write the case's evidence package: audio, signed manifest, timestamp, custody record.

    Check it anywhere with `recarchive evidence verify FILE`, or with the
    openssl and sha256sum commands in its README.txt (docs/disputes.md).
    """
    actor = staff_actor(app, token_file)
    if output.exists():
        raise click.BadParameter(
            f"{output} exists: an evidence package is never overwritten", param_hint="--output"
        )
    if not output.parent.is_dir():
        raise click.BadParameter(f"{output.parent} is not a directory", param_hint="--output")
    result = export_case(app.runtime, reference, output, actor=actor)
    summary = result.summary
    facts = {
        "case": result.reference,
        "file": str(output),
        "recordings": summary.recordings,
        "custody_entries": summary.custody_entries,
        "manifest_sha256": summary.manifest_sha256,
        "timestamped_at": summary.timestamped_at.isoformat() if summary.timestamped_at else None,
        "evidence_key_sha256": summary.public_key_sha256,
        "no_longer_archived": [str(i) for i in result.missing],
    }
    if as_json:
        click.echo(json.dumps(facts))
    else:
        click.echo(str(output))
    stamped = (
        f"timestamped {_local(app, summary.timestamped_at)}"
        if summary.timestamped_at
        else "no timestamp (no TSA configured)"
    )
    gone = (
        f"; {len(result.missing)} linked recording(s) no longer archived" if result.missing else ""
    )
    click.echo(
        f"case {result.reference}: {summary.recordings} recording(s), "
        f"{summary.custody_entries} custody entries, {stamped}{gone}",
        err=True,
    )
