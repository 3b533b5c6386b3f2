"""The ``recarchive`` command: a click group, one module per command group.

Commands are thin: they parse options, call a service and print its report.
Every :class:`~recarchive.errors.RecArchiveError` becomes one line on stderr
and exit status 1, never a traceback.
"""

from __future__ import annotations

import sys

import click

from recarchive import __version__
from recarchive.cli.audit_cmd import audit_group
from recarchive.cli.common import AppContext
from recarchive.cli.config_cmd import config_group
from recarchive.cli.directory_cmd import directory_group
from recarchive.cli.ingest_cmd import ingest_command
from recarchive.cli.init_cmd import init_command
from recarchive.cli.integrity_cmd import reconcile_command, verify_command
from recarchive.cli.lookup_cmd import get_command, lookup_command
from recarchive.cli.quarantine_cmd import quarantine_group
from recarchive.cli.retention_cmd import (
    expire_command,
    hold_group,
    retention_group,
    scheduler_command,
)
from recarchive.cli.serve_cmd import serve_command
from recarchive.cli.status_cmd import status_command
from recarchive.cli.store_cmd import store_group
from recarchive.cli.subject_cmd import subject_group
from recarchive.cli.tag_cmd import tag_command
from recarchive.cli.users_cmd import users_group
from recarchive.errors import RecArchiveError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=str),
    envvar="RECARCHIVE_CONFIG",
    help="TOML configuration file (default: $RECARCHIVE_CONFIG; else built-in defaults).",
)
@click.version_option(__version__, prog_name="recarchive")
@click.pass_context
def cli(ctx: click.Context, config_file: str | None) -> None:
    """recarchive: call-recording archive with exact retention, holds and audit."""
    app = AppContext(config_file)
    ctx.obj = app
    ctx.call_on_close(app.close)


cli.add_command(init_command)
cli.add_command(config_group)
cli.add_command(store_group)
cli.add_command(status_command)
cli.add_command(ingest_command)
cli.add_command(quarantine_group)
cli.add_command(tag_command)
cli.add_command(directory_group)
cli.add_command(audit_group)
cli.add_command(hold_group)
cli.add_command(expire_command)
cli.add_command(retention_group)
cli.add_command(scheduler_command)
cli.add_command(reconcile_command)
cli.add_command(verify_command)
cli.add_command(users_group)
cli.add_command(serve_command)
cli.add_command(lookup_command)
cli.add_command(get_command)
cli.add_command(subject_group)


def main() -> None:
    """Console-script entry point."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except RecArchiveError as exc:
        click.echo(f"Error: {exc.message}", err=True)
        sys.exit(1)
