"""``recarchive tag``: correct a recording's reason codes (audited)."""

from __future__ import annotations

import uuid
from pathlib import Path

import click

from recarchive.cli.common import AppContext, pass_app
from recarchive.cli.staff import TOKEN_OPTION, staff_actor
from recarchive.privacy.reasons import correct_reasons


@click.command("tag")
@click.argument("recording_id", type=click.UUID)
@click.option(
    "--reason", "replace", multiple=True, help="Set the reason codes to exactly these (repeatable)."
)
@click.option("--add", multiple=True, help="Add this reason code (repeatable).")
@click.option("--remove", multiple=True, help="Remove this reason code (repeatable).")
@TOKEN_OPTION
@pass_app
def tag_command(
    app: AppContext,
    recording_id: uuid.UUID,
    replace: tuple[str, ...],
    add: tuple[str, ...],
    remove: tuple[str, ...],
    token_file: Path | None,
) -> None:
    """Correct the reason codes of RECORDING_ID; the change goes to the audit log.

    Made by the member of staff whose token is given, with the API's role check.
    """
    if not (replace or add or remove):
        raise click.UsageError("give --reason, --add or --remove")
    change = correct_reasons(
        app.runtime.sessions,
        recording_id,
        taxonomy=app.settings.reasons.codes,
        actor=staff_actor(app, token_file),
        replace=list(replace) or None,
        add=add,
        remove=remove,
    )
    before = ", ".join(change.before) or "none"
    after = ", ".join(change.after) or "none"
    if change.changed:
        click.echo(f"{recording_id}: {before} -> {after}")
    else:
        click.echo(f"{recording_id}: unchanged ({after})")
