"""``recarchive config``: show the effective settings and check the connections."""

from __future__ import annotations

import json
from typing import Any

import click

from recarchive.catalogue.database import check_connection, describe_url
from recarchive.cli.common import AppContext, pass_app, warn_loose_modes
from recarchive.config import SECRETS
from recarchive.storage.services import describe_store


@click.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("show")
@pass_app
def show_command(app: AppContext) -> None:
    """Print the effective settings as JSON; secrets only as set or not set."""
    settings = app.settings
    shown: dict[str, Any] = settings.model_dump(mode="json")
    shown["catalogue"]["url"] = describe_url(app.runtime.engine)
    shown["storage"]["root"] = str(settings.storage_root)
    shown["secrets_set"] = {
        name: settings.secret(name, required=False) is not None
        for name, spec in SECRETS.items()
        if not spec.generated_in_development or settings.is_production
    }
    click.echo(json.dumps(shown, indent=2, sort_keys=True))


@config_group.command("check")
@pass_app
def check_command(app: AppContext) -> None:
    """Connect to the catalogue and the object store; exit 1 with the reason if either fails.

    Also warns (exit status still 0) about files and directories holding
    personal data that a group or other users can reach, with the fix for each.
    """
    check_connection(app.runtime.engine)
    click.echo(f"catalogue {describe_url(app.runtime.engine)}: reachable")
    app.runtime.store.check()
    click.echo(f"{describe_store(app.settings)}: reachable")
    warn_loose_modes(app)
