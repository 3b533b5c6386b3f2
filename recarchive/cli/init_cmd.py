"""``recarchive init``: create or upgrade the catalogue and create the bucket."""

from __future__ import annotations

import click

from recarchive.catalogue.services import initialise
from recarchive.cli.common import AppContext, pass_app, warn_loose_modes
from recarchive.crypto.providers import prepare_key_provider
from recarchive.disputes.keys import create_evidence_key, evidence_key_path
from recarchive.retention.deletion_record import replay_deletions
from recarchive.retention.policy import RetentionPolicy
from recarchive.storage.services import describe_store, open_anchor_sink


@click.command("init")
@pass_app
def init_command(app: AppContext) -> None:
    """Create or upgrade the catalogue schema and create the bucket. Safe to run again.

    With encryption enabled and the key-file provider, the file of
    key-encryption keys is created once; it is never replaced (losing it
    loses every encrypted recording: back it up). So is the evidence key that
    signs evidence packages (`recarchive evidence key` prints its public key).

    What it creates on disk is private (directories 0700, files 0600); existing
    paths that a group or other users can reach are reported as warnings.
    """
    keys = prepare_key_provider(app.settings)
    retention = app.settings.retention
    grace = retention.backstop_grace_days
    periods = RetentionPolicy(retention).classes()
    report = initialise(
        app.runtime.engine,
        app.runtime.store,
        backstop={name: days + grace for name, days in periods.items()},
        identity_hash_key=app.settings.secret("identity_hash_key"),
        audit_key=app.settings.secret("audit_key"),
        anchor_sink=open_anchor_sink(app.settings, app.runtime.store),
    )
    if report.schema_changed:
        before = report.revision_before or "empty"
        click.echo(f"catalogue {report.catalogue}: schema {before} -> {report.revision_after}")
    else:
        click.echo(f"catalogue {report.catalogue}: schema current ({report.revision_after})")
    state = "created" if report.store_created else "exists"
    click.echo(f"{describe_store(app.settings)}: {state}")
    if report.anchors:
        state = "created" if report.anchors_created else "exists"
        click.echo(f"audit anchors in {report.anchors}: {state}")
    if keys:
        click.echo(keys)
    else:
        click.echo(
            "encryption at rest: off, new recordings are stored in plaintext "
            "(encryption.enabled = true to encrypt them; docs/security.md)"
        )
    evidence_key = evidence_key_path(app.settings)
    state = "created" if create_evidence_key(evidence_key) else "exists"
    click.echo(f"evidence key in {evidence_key}: {state} (`recarchive evidence key` to publish it)")
    replayed = replay_deletions(app.runtime).replayed
    if replayed:
        click.echo(f"deletions replayed from the record outside the catalogue: {len(replayed)}")
    if report.backstop:
        rules = ", ".join(f"{name} after {days} days" for name, days in report.backstop.items())
        click.echo(f"lifecycle backstop: objects tagged {rules}")
    warn_loose_modes(app)
