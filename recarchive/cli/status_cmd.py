"""``recarchive status``: what the installation holds, in a few lines."""

from __future__ import annotations

import click

from recarchive.catalogue.database import check_connection, describe_url
from recarchive.catalogue.migrate import require_current_schema
from recarchive.catalogue.services import summarise
from recarchive.cli.common import AppContext, human_size, pass_app
from recarchive.storage.services import describe_store


@click.command("status")
@pass_app
def status_command(app: AppContext) -> None:
    """Show the schema revision and what the catalogue and the store hold."""
    engine = app.runtime.engine
    check_connection(engine)
    revision = require_current_schema(engine)
    summary = summarise(engine)
    app.runtime.store.check()
    click.echo(f"catalogue   {describe_url(engine)} (schema {revision})")
    click.echo(f"store       {describe_store(app.settings)}")
    click.echo(f"recordings  {summary.recordings} ({human_size(summary.bytes_stored)})")
    click.echo(f"customers   {summary.customers}")
