"""``recarchive keys``: rotate the key-encryption key, retire old ones, encrypt older recordings."""

from __future__ import annotations

import json

import click

from recarchive.cli.common import AppContext, pass_app, work_remains

BATCH_HELP = (
    "Data keys per transaction (a killed run loses at most one batch's work, redone next run)."
)


@click.group("keys")
def keys_group() -> None:
    """Encryption at rest: key-encryption keys and the data keys under them (docs/security.md)."""


@keys_group.command("rotate")
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=500, show_default=True, help=BATCH_HELP
)
@click.option(
    "--new-key",
    is_flag=True,
    help="Make a new key even while data keys remain under an older one (some do not unwrap).",
)
@click.option("--json", "as_json", is_flag=True, help="The report as one JSON object.")
@pass_app
def rotate_command(app: AppContext, batch_size: int, new_key: bool, as_json: bool) -> None:
    """Make a new key-encryption key current and re-wrap every data key under it.

    The key file gets a new last line (the older keys stay, to unwrap what
    they wrapped); with PKCS#11, set encryption.pkcs11_key_label to a new
    label first: the key is generated on the token. The audio is not
    touched. Safe to kill: the next run makes no new key while data keys
    remain under an older one (unless --new-key), and finishes the re-wrapping.

    Exit status: 0 when every data key is under the current key; 3 when some
    remain under an older one (locked by a deletion in progress, wrapped by
    an ingest worker started before the rotation, or not unwrappable: run
    again, or see the report).
    """
    from recarchive.composition import wrapped_key_tables
    from recarchive.retention.key_rotation import RotationReport, rotate_keys

    def progress(report: RotationReport) -> None:
        if not app.quiet:
            click.echo(f"re-wrapped {report.rewrapped} data key(s)", err=True)

    report = rotate_keys(
        app.runtime,
        tables=wrapped_key_tables(),
        batch_size=batch_size,
        new_key=new_key,
        on_batch=progress,
    )
    if as_json:
        click.echo(json.dumps({**report.__dict__, "complete": report.complete}, sort_keys=True))
    else:
        click.echo(f"current key-encryption key: {report.current}")
        click.echo(f"new key made current: {report.new_kek or 'no (finished an earlier rotation)'}")
        click.echo(f"data keys re-wrapped: {report.rewrapped}")
        for kek, count in sorted(report.remaining.items()):
            click.echo(f"still under {kek}: {count}")
    for what, reason in sorted(report.failed.items()):
        click.echo(f"not re-wrapped: {what}: {reason}", err=True)
    if not report.complete:
        work_remains("data keys remain under an older key-encryption key: run keys rotate again")


@keys_group.command("retire")
@click.option("--json", "as_json", is_flag=True, help="The report as one JSON object.")
@pass_app
def retire_command(app: AppContext, as_json: bool) -> None:
    """Remove from the key file the older keys no data key is wrapped under. Irreversible.

    A key still in use is kept (run keys rotate to finish first). A
    catalogue backup taken before the rotation cannot be read with the
    key file that remains: keep a backup of the old key file as long as
    such catalogue backups are kept (docs/security.md).

    Exit status: 0 when only the current key remains; 3 when older keys are
    still in use.
    """
    from recarchive.composition import wrapped_key_tables
    from recarchive.retention.key_rotation import retire_keys

    report = retire_keys(app.runtime, tables=wrapped_key_tables())
    if as_json:
        click.echo(json.dumps(report.__dict__, sort_keys=True))
    else:
        click.echo(f"current key-encryption key: {report.current}")
        for kek in report.retired:
            click.echo(f"retired: file:{kek}")
        for kek, count in sorted(report.in_use.items()):
            click.echo(f"kept, still in use: {kek}: {count}")
    if report.in_use:
        work_remains("older keys still wrap data keys: run keys rotate, then keys retire")


@keys_group.command("encrypt-existing")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Recordings per batch (progress is shown after each).",
)
@click.option("--json", "as_json", is_flag=True, help="The report as one JSON object.")
@pass_app
def encrypt_existing_command(app: AppContext, batch_size: int, as_json: bool) -> None:
    """Encrypt the recordings archived in plaintext before encryption was enabled.

    Each recording is encrypted to a new object (its SHA-256 checked on the
    way), then its row switches to it with its data key in one transaction,
    then the plaintext object is deleted. The archive serves both kinds
    meanwhile. Held recordings, recordings due for expiry and those being
    deleted are skipped. Safe to kill: the next run finishes.

    Exit status: 0 when no active recording is left in plaintext; 3 when
    some are (skipped or failed: see the report).
    """
    from recarchive.retention.encrypt_existing import EncryptionReport, encrypt_existing

    def progress(report: EncryptionReport) -> None:
        if not app.quiet:
            click.echo(f"encrypted {report.encrypted} recording(s)", err=True)

    report = encrypt_existing(app.runtime, batch_size=batch_size, on_batch=progress)
    if as_json:
        click.echo(json.dumps({**report.__dict__, "complete": report.complete}, sort_keys=True))
    else:
        click.echo(f"recordings encrypted: {report.encrypted}")
        click.echo(f"plaintext objects deleted: {report.plaintext_deleted}")
        for why, count in sorted(report.skipped.items()):
            click.echo(f"skipped ({why}): {count}")
        click.echo(f"active recordings still in plaintext: {report.remaining}")
    for recording_id, reason in sorted(report.failed.items()):
        click.echo(f"not encrypted: recording {recording_id}: {reason}", err=True)
    if not report.complete:
        work_remains("recordings remain in plaintext: see the report, run again later")
