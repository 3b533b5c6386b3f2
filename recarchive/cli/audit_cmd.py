"""``recarchive audit``: check the hash chain of the audit log and export it."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import click

from recarchive.access.anchoring import AnchorInvalid, load_anchors
from recarchive.access.audit import AuditChainBroken, verify_chain
from recarchive.access.audit_reads import PAGE_MAX, AuditQuery, audit_head, read_audit
from recarchive.cli.common import AppContext, parse_time, pass_app
from recarchive.cli.staff import TOKEN_OPTION, staff_actor
from recarchive.private_files import open_private


@click.group("audit")
def audit_group() -> None:
    """The append-only, hash-chained audit log."""


@audit_group.command("verify")
@pass_app
def verify_command(app: AppContext) -> None:
    """Check the whole log: links, hashes, seals, and the published anchors.

    Exits 1 naming the first entry that does not match: one edited, removed
    or reordered, one recarchive did not write (no valid seal), one that
    differs from its anchor, or a log that ends before its newest anchor.
    """
    runtime = app.runtime
    keys = runtime.audit_keys.get()
    sink = runtime.anchors.sink
    installation = str(runtime.catalogue_guard.opened.installation_id)
    try:
        anchors = load_anchors(sink, keys, installation)
    except AnchorInvalid as exc:
        raise AuditChainBroken(f"audit anchors in {sink.where}: {exc.message}") from exc
    report = verify_chain(runtime.sessions, keys=keys, anchors=anchors)
    if not report.intact:
        raise AuditChainBroken(
            f"audit log broken at entry {report.broken_at}: {report.problem} "
            f"({report.entries} entries read, {report.anchors} anchors in {sink.where})"
        )
    click.echo(f"audit log intact: {report.entries} entries, every one sealed")
    latest = report.latest_anchor
    if latest is None:
        click.echo(f"no anchor in {sink.where} yet: a cut tail would not be seen", err=True)
        return
    click.echo(
        f"{report.anchors} anchor(s) in {sink.where}; the newest names entry {latest.seq} "
        f"({latest.at.isoformat()}); {report.unanchored} entries since, not anchored yet"
    )


@audit_group.group("anchors")
def anchors_group() -> None:
    """The chain's head, published outside the catalogue."""


@anchors_group.command("publish")
@pass_app
def publish_command(app: AppContext) -> None:
    """Anchor the chain's head now (it is also anchored after every commit)."""
    anchor = app.runtime.anchors.publish()
    if anchor is None:
        click.echo("the head is anchored already")
        return
    click.echo(f"anchored entry {anchor.seq} in {app.runtime.anchors.sink.where}")


@anchors_group.command("export")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    required=True,
    help="JSON file to write (refused if it exists).",
)
@pass_app
def anchors_export_command(app: AppContext, output: Path) -> None:
    """Write every anchor and the public key, for an auditor to check without any secret.

    With `recarchive audit export` (the entries), the auditor can check each
    anchor's Ed25519 signature with the public key, recompute every entry's
    hash, and compare the anchored hashes: see docs/api.md, "The audit log".
    """
    runtime = app.runtime
    keys = runtime.audit_keys.get()
    installation = str(runtime.catalogue_guard.opened.installation_id)
    anchors = load_anchors(runtime.anchors.sink, keys, installation)
    document = {
        "installation_id": installation,
        "public_key_ed25519": base64.b64encode(keys.public_bytes).decode(),
        "key_id": keys.key_id,
        "anchors": [json.loads(anchor.to_bytes()) for anchor in anchors],
    }
    try:
        with open_private(output, "xb") as handle:
            handle.write(json.dumps(document, indent=1, sort_keys=True).encode() + b"\n")
    except FileExistsError:
        raise click.BadParameter(f"{output} exists", param_hint="--output") from None
    except OSError as exc:
        raise click.BadParameter(f"{output}: {exc.strerror}", param_hint="--output") from None
    click.echo(f"{len(anchors)} anchor(s) written to {output}")


@audit_group.command("export")
@click.option("--from", "start_text", help="ISO 8601 time with zone: first entry to export.")
@click.option("--to", "end_text", help="ISO 8601 time with zone: export entries before this.")
@TOKEN_OPTION
@pass_app
def export_command(
    app: AppContext, start_text: str | None, end_text: str | None, token_file: Path | None
) -> None:
    """Print entries as JSON lines, hashes included, so that the chain can be re-checked.

    The auditor's, with their token, like the API's audit endpoint; each page
    of 1000 entries read is audited. The export ends at the newest entry
    when it started.
    """
    reader = staff_actor(app, token_file)
    query = AuditQuery(start=parse_time(start_text, "--from"), end=parse_time(end_text, "--to"))
    head = audit_head(app.runtime)
    cursor: int | None = None
    while True:
        page = read_audit(
            app.runtime,
            reader,
            query,
            cursor=cursor,
            limit=PAGE_MAX,
            through_seq=head,
            client_details={"export": True},
        )
        for item in page.items:
            click.echo(json.dumps(item, sort_keys=True, ensure_ascii=False, default=str))
        if page.next_cursor is None:
            return
        cursor = page.next_cursor
