"""``recarchive status``: the operator's morning question, answered on one screen."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import click

from recarchive.cli.common import EXIT_WORK_REMAINS, AppContext, human_size, pass_app
from recarchive.status import InstallationStatus, installation_status


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min ago"
    hours = minutes // 60
    return f"{hours} h {minutes % 60} min ago" if hours < 48 else f"{hours // 24} days ago"


def _local(value: dt.datetime | None, zone: ZoneInfo) -> str:
    return f"{value.astimezone(zone):%Y-%m-%d %H:%M %Z}" if value else "-"


def _lines(status: InstallationStatus, zone: ZoneInfo) -> list[str]:
    lines = [
        f"catalogue    {status.catalogue} (schema {status.schema})",
        f"store        {status.store}: "
        + ("ok" if status.store_ok else f"NOT REACHABLE: {status.store_problem}"),
        f"recordings   {status.recordings} ({human_size(status.bytes_stored)}), "
        f"customers {status.customers}",
        f"waiting      {status.waiting} to archive, {status.claimed} being archived now",
    ]
    quarantined = ", ".join(f"{reason} {n}" for reason, n in status.quarantined.items())
    lines.append(f"quarantined  {sum(status.quarantined.values())}"
                 + (f" ({quarantined})" if quarantined else ""))  # fmt: skip
    for source in status.sources:
        lines.append(
            f"source       {source.name}: last archived {_ago(source.lag_s)}"
            + (f" ({_local(source.last_archived_at, zone)})" if source.last_archived_at else "")
            + f", {source.waiting} waiting"
        )
    nightly = status.nightly
    if nightly.done_at is None:
        last = f"the run of {_local(nightly.scheduled, zone)} has not finished"
    else:
        report = nightly.report
        figures = ", ".join(
            f"{key} {report[key]}"
            for key in ("deleted", "held", "failed", "unsettled")
            if key in report
        )
        last = f"ran {_local(nightly.done_at, zone)}" + (f": {figures}" if figures else "")
    lines.append(f"nightly      {last}; next {_local(nightly.following, zone)}")
    lines.append(f"holds        {status.open_holds} open")
    lines.append(f"requests     {status.open_requests} data-subject request(s) open")
    audit = status.audit
    if audit.anchor_problem is not None:
        anchored = f"ANCHORS NOT READABLE: {audit.anchor_problem}"
    elif audit.anchor_seq is None:
        anchored = "no anchor yet"
    else:
        anchored = (
            f"newest anchor names entry {audit.anchor_seq} ({_local(audit.anchor_at, zone)}), "
            f"{audit.unanchored} since"
        )
    lines.append(f"audit        {audit.entries} entries, head {audit.head_seq}; {anchored}")
    lines.append(_encryption_line(status))
    return lines


def _encryption_line(status: InstallationStatus) -> str:
    encryption = status.encryption
    stored = f"{encryption.encrypted} of {encryption.encrypted + encryption.plaintext} encrypted"
    if not encryption.enabled:
        return f"encryption   off: new recordings are stored in plaintext; {stored}"
    line = f"encryption   on ({encryption.provider} key provider); {stored}"
    if encryption.plaintext:
        line += f" (`recarchive keys encrypt-existing` encrypts the other {encryption.plaintext})"
    return line


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for monitoring.")
@pass_app
def status_command(app: AppContext, as_json: bool) -> None:
    """What the archive holds, what waits, and how the last night went.

    Recordings and bytes; items waiting and being archived; open quarantine
    entries by reason; per source, when it last delivered; the last nightly
    run and the next; open holds and data-subject requests; the audit log
    and its newest anchor; encryption at rest and how many recordings it
    covers; whether the store answers. Exit status 3 when
    something waits (items, quarantine entries, requests), 1 when the
    catalogue cannot be read or the store does not answer.
    """
    status = installation_status(app.runtime)
    if as_json:
        click.echo(json.dumps(status.as_dict(), sort_keys=True))
    else:
        zone = ZoneInfo(app.settings.general.timezone)
        for line in _lines(status, zone):
            click.echo(line)
    if not status.store_ok:
        click.echo(f"Error: {status.store_problem}", err=True)
        raise click.exceptions.Exit(1)
    if status.work_remains:
        raise click.exceptions.Exit(EXIT_WORK_REMAINS)
