"""``recarchive directory``: load the customer directory that callers are matched against."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from recarchive.catalogue.database import check_connection
from recarchive.catalogue.directory import DirectoryImportReport, import_directory
from recarchive.catalogue.identity import check_region
from recarchive.catalogue.revision import require_current_schema
from recarchive.cli.common import EXIT_WORK_REMAINS, AppContext, pass_app
from recarchive.errors import SecretMissing

#: Exit status when the file was imported but some of its rows were not: done, but
#: work remains (the rows to fix), as in docs/operations.md's table.
EXIT_INVALID_ROWS = EXIT_WORK_REMAINS


def _region(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    # UnknownRegion (exit status 1, one line naming the setting), not click's usage error.
    region = value.strip().upper()
    check_region(region)
    return region


@click.group("directory")
def directory_group() -> None:
    """Manage the customer directory that callers are matched against."""


@directory_group.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--replace",
    is_flag=True,
    help="Also delete customers that are not in FILE (skipped when a row's "
    "customer_id cannot be read).",
)
@click.option("--dry-run", is_flag=True, help="Check and count every row, write nothing.")
@click.option(
    "--region",
    default="FI",
    show_default=True,
    callback=_region,
    help="Country whose national spelling the phone numbers use (ISO 3166 code).",
)
@pass_app
def import_command(app: AppContext, file: Path, replace: bool, dry_run: bool, region: str) -> None:
    """Import the customer directory from FILE, a CSV export of the customer system.

    FILE is UTF-8 (a BOM is fine), separated by commas or semicolons, with
    the header customer_id,name,phone_numbers,identity_code. phone_numbers
    holds numbers separated by ';' (or none); identity_code is a
    henkilötunnus, a Y-tunnus or empty, and is stored only as a keyed hash.
    Customers in FILE are added or updated to match it.

    Invalid rows are listed on stderr as 'line N: reason' and skipped; the
    other rows are loaded.

    Exit status: 0 when every row loaded; 3 when some rows were invalid (the
    others loaded: done, but the invalid rows remain to be fixed); 1 when
    FILE could not be imported at all (missing, not UTF-8 CSV, wrong
    header); 2, as for every command, when the command line is wrong.
    """
    key = app.settings.secret("identity_hash_key")
    if key is None:
        raise SecretMissing("secret identity_hash_key is not set")
    engine = app.runtime.engine
    check_connection(engine)
    require_current_schema(engine)
    progress = sys.stderr.isatty()
    report = import_directory(
        app.runtime.sessions,
        file,
        hash_key=key,
        region=region,
        replace=replace,
        dry_run=dry_run,
        on_batch=_show_progress if progress else None,
    )
    if progress:
        click.echo("\r\033[K", err=True, nl=False)
    for error in report.errors:
        click.echo(f"line {error.line}: {error.reason}", err=True)
    if report.errors_omitted:
        click.echo(f"... and {report.errors_omitted} more invalid rows", err=True)
    if report.removal_skipped:
        click.echo(
            f"not removing customers absent from {file}: {report.unattributed} rows "
            "have no readable customer_id",
            err=True,
        )
    click.echo(
        f"read {report.rows_read} rows: {report.inserted} inserted, {report.updated} updated, "
        f"{report.unchanged} unchanged, {report.removed} removed, {report.invalid} invalid"
    )
    if dry_run:
        click.echo("dry run: nothing was written")
    if report.invalid:
        raise click.exceptions.Exit(EXIT_INVALID_ROWS)


def _show_progress(report: DirectoryImportReport) -> None:
    click.echo(f"\r{report.rows_read} rows read", err=True, nl=False)
