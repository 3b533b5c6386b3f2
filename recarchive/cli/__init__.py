"""The ``recarchive`` command: a click group, one module per command group.

Commands are thin: they parse options, call a service and print its report.
Every :class:`~recarchive.errors.RecArchiveError` becomes one line on stderr
and exit status 1, never a traceback. Exit statuses: 0 all done, 1 failed,
2 usage, 3 done but work remains (docs/operations.md, "Exit statuses").

Each command's module is imported only when that command runs (or when help
lists it): ``recarchive ingest`` does not pay for the API's or the privacy
tools' imports, which used to take most of a second at every start.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click
from sqlalchemy.exc import SQLAlchemyError

from recarchive import __version__
from recarchive.cli.common import AppContext
from recarchive.errors import RecArchiveError

logger = logging.getLogger(__name__)

#: Command name -> "module:attribute" under recarchive.cli.
COMMANDS = {
    "init": "init_cmd:init_command",
    "config": "config_cmd:config_group",
    "store": "store_cmd:store_group",
    "status": "status_cmd:status_command",
    "ingest": "ingest_cmd:ingest_command",
    "quarantine": "quarantine_cmd:quarantine_group",
    "tag": "tag_cmd:tag_command",
    "directory": "directory_cmd:directory_group",
    "audit": "audit_cmd:audit_group",
    "hold": "retention_cmd:hold_group",
    "expire": "retention_cmd:expire_command",
    "retention": "retention_cmd:retention_group",
    "scheduler": "retention_cmd:scheduler_command",
    "reconcile": "integrity_cmd:reconcile_command",
    "verify": "integrity_cmd:verify_command",
    "users": "users_cmd:users_group",
    "serve": "serve_cmd:serve_command",
    "lookup": "lookup_cmd:lookup_command",
    "get": "lookup_cmd:get_command",
    "subject": "subject_cmd:subject_group",
    "restore-check": "restore_cmd:restore_check_command",
    "keys": "keys_cmd:keys_group",
    "case": "case_cmd:case_group",
    "evidence": "evidence_cmd:evidence_group",
    "qa": "qa_cmd:qa_group",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (click's documented pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *super().list_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module_name, attribute = target.split(":")
        module = importlib.import_module(f"recarchive.cli.{module_name}")
        command = getattr(module, attribute)
        if not isinstance(command, click.Command) or command.name != cmd_name:
            raise RuntimeError(f"recarchive.cli.{target} is not the {cmd_name!r} command")
        return command


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=str),
    envvar="RECARCHIVE_CONFIG",
    help="TOML configuration file (default: $RECARCHIVE_CONFIG; else built-in defaults).",
)
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="Log more on stderr: -v info, -vv debug (default: warnings and errors only).",
)
@click.option("-q", "--quiet", is_flag=True, help="Results and errors only: no progress, no notes.")
@click.version_option(__version__, prog_name="recarchive")
@click.pass_context
def cli(ctx: click.Context, config_file: str | None, verbose: int, quiet: bool) -> None:
    """recarchive: call-recording archive with exact retention, holds and audit.

    Results go to stdout (text, or JSON lines with --json); errors, warnings
    and progress go to stderr. Long-running services (serve, ingest and
    scheduler without --once) log at general.log_level, as JSON lines when
    stderr is not a terminal.
    """
    if quiet and verbose:
        raise click.UsageError("give --quiet or --verbose, not both")
    app = AppContext(config_file, -1 if quiet else verbose)
    ctx.obj = app
    ctx.call_on_close(app.close)


def main() -> None:
    """Console-script entry point."""
    try:
        status = cli.main(standalone_mode=False)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):
            # Every long command keeps what it finished and starts where it stopped.
            click.echo(
                "Interrupted: what was done is kept; run the command again to go on.", err=True
            )
        else:  # a confirmation declined
            click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except RecArchiveError as exc:
        click.echo(f"Error: {exc.message}", err=True)
        sys.exit(1)
    except SQLAlchemyError as exc:
        # Not a failure of the catalogue's reach (those are RecArchiveErrors, see
        # catalogue/failures.py): a statement the catalogue refused. Its message
        # may quote values, so only its class is shown; the log has the frames.
        logger.exception("command_failed")
        click.echo(
            f"Error: the catalogue refused a statement ({type(exc).__name__}); "
            "this is a fault of recarchive: please report it with the log",
            err=True,
        )
        sys.exit(1)
    if isinstance(status, int) and status:  # click.exceptions.Exit, e.g. EXIT_WORK_REMAINS
        sys.exit(status)
