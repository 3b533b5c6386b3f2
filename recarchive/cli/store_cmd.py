"""``recarchive store``: look into the object store and prove that it works."""

from __future__ import annotations

import click

from recarchive.cli.common import AppContext, echo_list_summary, human_size, pass_app
from recarchive.storage.services import describe_store, selftest_store


@click.group("store")
def store_group() -> None:
    """Inspect the object store."""


@store_group.command("selftest")
@click.option(
    "--size",
    type=click.IntRange(0, 1024 * 1024 * 1024),
    default=256 * 1024,
    show_default=True,
    help="Size in bytes of the probe object written and read back.",
)
@pass_app
def selftest_command(app: AppContext, size: int) -> None:
    """Write, read back, range-read, tag, list and delete a probe object."""
    report = selftest_store(app.runtime.store, size=size)
    click.echo(
        f"{describe_store(app.settings)}: round trip of {human_size(report.size)} ok "
        f"(sha256 {report.sha256[:16]}..., {report.seconds * 1000:.0f} ms)"
    )


@store_group.command("ls")
@click.argument("prefix", default="")
@click.option(
    "--limit",
    type=click.IntRange(1),
    default=100,
    show_default=True,
    help="Stop after this many objects.",
)
@pass_app
def list_command(app: AppContext, prefix: str, limit: int) -> None:
    """List objects whose key starts with PREFIX."""
    for count, info in enumerate(app.runtime.store.list(prefix), start=1):
        click.echo(f"{info.last_modified:%Y-%m-%d %H:%M:%S}  {info.size:>12}  {info.key}")
        if count >= limit:
            echo_list_summary(f"... stopped after {limit} objects (use --limit)", after_rows=True)
            break
