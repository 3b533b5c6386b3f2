"""``recarchive subject``: data-subject requests, for a privacy officer (with their token)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import click

from recarchive.catalogue.restrictions import ProcessingRestriction
from recarchive.cli.common import (
    AppContext,
    echo_list_summary,
    human_size,
    pass_app,
    work_remains,
)
from recarchive.cli.progress import progress
from recarchive.cli.staff import TOKEN_OPTION, client_name, principal_from
from recarchive.privacy.erasure import erase_subject
from recarchive.privacy.export import export_subject
from recarchive.privacy.models import RequestKind, RequestStatus
from recarchive.privacy.restrictions import (
    lift_restriction,
    list_restrictions,
    object_to_training,
    relink_recording,
    restrict,
)
from recarchive.privacy.shared import SharedDecisions
from recarchive.privacy.subjects import (
    SubjectQuery,
    list_requests,
    request_dict,
    show_subject,
)


def _subject_options(command: Any) -> Any:
    for option in reversed(
        [
            click.option("--customer", "customer_id", help="The customer id."),
            click.option("--number", help="A phone number of the subject (any spelling)."),
            click.option(
                "--identity-code",
                help="Henkilötunnus or Y-tunnus ('-' reads it from stdin, out of shell history).",
            ),
        ]
    ):
        command = option(command)
    return command


def _shared_options(command: Any) -> Any:
    """--include-shared / --leave-out-shared: the officer's decision on each shared-number call."""
    command = click.option(
        "--leave-out-shared",
        "leave_out",
        multiple=True,
        type=click.UUID,
        help="A call from a shared number (see `subject show`) to leave out; repeatable.",
    )(command)
    return click.option(
        "--include-shared",
        "include",
        multiple=True,
        type=click.UUID,
        help="A call from a number shared with other customers (see `subject show`) "
        "that is this subject's; repeatable.",
    )(command)


def _decisions(include: tuple[uuid.UUID, ...], leave_out: tuple[uuid.UUID, ...]) -> SharedDecisions:
    return SharedDecisions(frozenset(include), frozenset(leave_out))


def _echo_shared(shared: dict[str, list[str]]) -> None:
    undecided = shared.get("shared_undecided", [])
    for recording_id in undecided:
        click.echo(
            f"  shared-number call {recording_id}: undecided "
            "(--include-shared or --leave-out-shared it)"
        )


def _query(customer_id: str | None, number: str | None, identity_code: str | None) -> SubjectQuery:
    if identity_code == "-":
        identity_code = sys.stdin.readline().strip()
    return SubjectQuery(customer_id=customer_id, number=number, identity_code=identity_code)


@click.group("subject")
def subject_group() -> None:
    """Data-subject rights: show, export, erase, restrict, object, rectify, requests."""


@subject_group.command("show")
@_subject_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@TOKEN_OPTION
@pass_app
def show_command(
    app: AppContext,
    customer_id: str | None,
    number: str | None,
    identity_code: str | None,
    as_json: bool,
    token_file: Path | None,
) -> None:
    """What the archive holds about the subject: recordings, holds, restrictions, requests."""
    principal = principal_from(app, token_file)
    overview = show_subject(
        app.runtime,
        principal,
        _query(customer_id, number, identity_code),
        client_addr=client_name(),
    )
    if as_json:
        click.echo(json.dumps(overview.as_dict(), ensure_ascii=False, indent=2))
        return
    data = overview.as_dict()
    click.echo(f"subject: {overview.subject.label()} (reference {overview.subject.ref})")
    if overview.name:
        click.echo(f"name: {overview.name}")
    # The directory keeps numbers as keyed hashes: these are the ones their calls came from.
    click.echo(f"numbers: {', '.join(overview.numbers) or '- (none on their own calls)'}")
    click.echo(
        f"recordings: {overview.recordings} "
        f"(first {data['first_call'] or '-'}, last {data['last_call'] or '-'}), "
        f"{overview.held} under a hold"
    )
    for call in overview.shared:
        others = ", ".join(call["other_candidates"]) or "-"
        click.echo(
            f"shared-number call {call['id']} at {call['started_at']}: also a candidate: {others}"
        )
    for restriction in overview.restrictions:
        state = "lifted" if restriction["lifted_at"] else "in force"
        click.echo(
            f"{restriction['kind']} {restriction['id']} ({state})"
            + (f" to {restriction['allowed_purpose']}" if restriction["allowed_purpose"] else "")
            + (f" case {restriction['case_ref']}" if restriction["case_ref"] else "")
        )
    for request in overview.requests:
        click.echo(
            f"request {request['id']}: {request['kind']} {request['status']} "
            f"at {request['received_at']} by {request['handled_by']}"
        )


@subject_group.command("export")
@_subject_options
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The zip file to write, in an existing directory.",
)
@_shared_options
@TOKEN_OPTION
@pass_app
def export_command(
    app: AppContext,
    customer_id: str | None,
    number: str | None,
    identity_code: str | None,
    output: Path,
    include: tuple[uuid.UUID, ...],
    leave_out: tuple[uuid.UUID, ...],
    token_file: Path | None,
) -> None:
    """Write a zip of every recording of the subject, a manifest, checksums and a summary.

    The zip is written into an existing directory (a mistyped path would
    otherwise leave a copy of personal data where nobody looks for it).
    """
    principal = principal_from(app, token_file)
    if output.exists():
        raise click.ClickException(f"{output} exists; not overwriting it")
    if not output.parent.is_dir():
        raise click.ClickException(
            f"{output.parent}: no such directory; create it first, or write elsewhere"
        )
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent)  # mode 0600
    try:
        with (
            os.fdopen(fd, "wb") as stream,
            progress("export", quiet=app.quiet) as report_progress,
        ):
            report = export_subject(
                app.runtime,
                principal,
                _query(customer_id, number, identity_code),
                stream,
                client_addr=client_name(),
                shared=_decisions(include, leave_out),
                on_progress=report_progress,
            )
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    click.echo(
        f"wrote {output}: {report.recordings} recording(s), {human_size(report.bytes_written)}"
        + (f", {report.transcoded} transcoded to WAV" if report.transcoded else "")
        + f"; request {report.request_id}"
    )
    _echo_shared(report.shared)


@subject_group.command("erase")
@_subject_options
@click.option("--note", help="Free text kept with the request (no identity codes).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_shared_options
@TOKEN_OPTION
@pass_app
def erase_command(
    app: AppContext,
    customer_id: str | None,
    number: str | None,
    identity_code: str | None,
    note: str | None,
    yes: bool,
    include: tuple[uuid.UUID, ...],
    leave_out: tuple[uuid.UUID, ...],
    token_file: Path | None,
) -> None:
    """Erase every recording of the subject now; held ones wait for their holds' release.

    Exit status 3 when the request stays pending (held recordings wait, or
    the store failed for some): done for now, but work remains.
    """
    principal = principal_from(app, token_file)
    query = _query(customer_id, number, identity_code)
    if not yes:
        click.confirm("Erase every recording of this subject irreversibly?", abort=True)
    report = erase_subject(
        app.runtime,
        principal,
        query,
        note=note,
        client_addr=client_name(),
        shared=_decisions(include, leave_out),
    )
    click.echo(f"request {report.request_id}: {report.status.value}: {report.explain()}")
    _echo_shared(report.shared)
    for recording_id, holds in sorted(report.waiting.items()):
        cases = ", ".join(f"{h['case_ref']} (hold {h['hold_id']})" for h in holds)
        click.echo(f"  waiting {recording_id}: held for {cases}")
    if report.status is RequestStatus.PENDING:
        work_remains(f"request {report.request_id} is pending: the rest waits (see above)")


@subject_group.command("restrict")
@_subject_options
@click.option("--recording", "recording_ids", multiple=True, type=click.UUID, help="Repeatable.")
@click.option(
    "--purpose",
    required=True,
    type=click.Choice(["dispute", "data_subject_request", "training"]),
    help="The only purpose the recordings may still be used for.",
)
@click.option("--case", "case_ref", help="The case they may be used for (required for dispute).")
@click.option("--note", help="Free text kept with the request.")
@TOKEN_OPTION
@pass_app
def restrict_command(
    app: AppContext,
    customer_id: str | None,
    number: str | None,
    identity_code: str | None,
    recording_ids: tuple[uuid.UUID, ...],
    purpose: str,
    case_ref: str | None,
    note: str | None,
    token_file: Path | None,
) -> None:
    """Restrict processing of the subject's (or the named) recordings to one purpose."""
    principal = principal_from(app, token_file)
    has_subject = any((customer_id, number, identity_code))
    request, rows = restrict(
        app.runtime,
        principal,
        query=_query(customer_id, number, identity_code) if has_subject else None,
        recording_ids=recording_ids,
        allowed_purpose=purpose,
        case_ref=case_ref,
        note=note,
        client_addr=client_name(),
    )
    for row in rows:
        scope = _scope(row)
        click.echo(f"restriction {row.id} on {scope}: only for {purpose}")
    if request is not None:
        click.echo(f"request {request.id} recorded")


@subject_group.command("object")
@_subject_options
@click.option("--recording", "recording_ids", multiple=True, type=click.UUID, help="Repeatable.")
@click.option("--note", help="Free text kept with the request.")
@TOKEN_OPTION
@pass_app
def object_command(
    app: AppContext,
    customer_id: str | None,
    number: str | None,
    identity_code: str | None,
    recording_ids: tuple[uuid.UUID, ...],
    note: str | None,
    token_file: Path | None,
) -> None:
    """Exclude the subject's recordings from training use, now and for later calls."""
    principal = principal_from(app, token_file)
    has_subject = any((customer_id, number, identity_code))
    request, rows = object_to_training(
        app.runtime,
        principal,
        query=_query(customer_id, number, identity_code) if has_subject else None,
        recording_ids=recording_ids,
        note=note,
        client_addr=client_name(),
    )
    for row in rows:
        scope = _scope(row)
        click.echo(f"objection {row.id} on {scope}: excluded from training")
    if request is not None:
        click.echo(f"request {request.id} recorded")


def _scope(row: ProcessingRestriction) -> str:
    if row.customer_id:
        return f"customer {row.customer_id}"
    if row.number:
        return "the calls of an unlinked caller's number"
    return f"recording {row.recording_id}"


@subject_group.command("lift")
@click.argument("restriction_id", type=click.UUID)
@click.option("--reason", required=True, help="Why it is lifted (audited).")
@TOKEN_OPTION
@pass_app
def lift_command(
    app: AppContext, restriction_id: uuid.UUID, reason: str, token_file: Path | None
) -> None:
    """Lift a restriction or an objection."""
    principal = principal_from(app, token_file)
    row = lift_restriction(
        app.runtime, principal, restriction_id, reason=reason, client_addr=client_name()
    )
    click.echo(f"{row.kind.value} {row.id} lifted")


@subject_group.command("restrictions")
@click.option("--all", "include_lifted", is_flag=True, help="Include lifted ones.")
@TOKEN_OPTION
@pass_app
def restrictions_command(app: AppContext, include_lifted: bool, token_file: Path | None) -> None:
    """List restrictions and objections in force (JSON lines)."""
    principal_from(app, token_file, subject=True)
    for row in list_restrictions(app.runtime, include_lifted=include_lifted):
        click.echo(json.dumps(row, ensure_ascii=False))


@subject_group.command("rectify")
@click.argument("recording_id", type=click.UUID)
@click.option("--customer", "customer_id", help="The customer the recording belongs to.")
@click.option("--unlink", is_flag=True, help="The recording belongs to no known customer.")
@click.option("--reason", required=True, help="Why (kept with the request and audited).")
@TOKEN_OPTION
@pass_app
def rectify_command(
    app: AppContext,
    recording_id: uuid.UUID,
    customer_id: str | None,
    unlink: bool,
    reason: str,
    token_file: Path | None,
) -> None:
    """Link RECORDING_ID to the right customer; reason codes: `recarchive tag`."""
    if bool(customer_id) == unlink:
        raise click.UsageError("give --customer ID or --unlink")
    principal = principal_from(app, token_file)
    change = relink_recording(
        app.runtime,
        principal,
        recording_id,
        customer_id=customer_id,
        reason=reason,
        client_addr=client_name(),
    )
    after = change.after or "nobody"
    if not change.changed:
        click.echo(f"recording {recording_id} is already linked to {after}")
    else:
        click.echo(f"recording {recording_id}: {change.describe_before()} -> {after}")


@subject_group.command("requests")
@click.option(
    "--kind",
    type=click.Choice([k.value for k in RequestKind]),
    help="Only requests of this kind.",
)
@click.option(
    "--status",
    type=click.Choice([s.value for s in RequestStatus]),
    help="Only requests in this status.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@TOKEN_OPTION
@pass_app
def requests_command(
    app: AppContext,
    kind: str | None,
    status: str | None,
    as_json: bool,
    token_file: Path | None,
) -> None:
    """Every registered data-subject request, newest first."""
    principal_from(app, token_file, subject=True)
    requests = list_requests(
        app.runtime,
        kind=RequestKind(kind) if kind else None,
        status=RequestStatus(status) if status else None,
    )
    for request in requests:
        if as_json:
            click.echo(json.dumps(request_dict(request), ensure_ascii=False))
            continue
        click.echo(
            f"{request.id}  {request.received_at:%Y-%m-%d %H:%M}  {request.kind.value:<13}  "
            f"{request.status.value:<9}  {request.subject_ref[:24]:<24}  {request.handled_by}"
        )
    if not as_json:
        echo_list_summary(f"{len(requests)} request(s)", after_rows=bool(requests))
