"""``recarchive qa report``: QA figures per agent and period, for a QA trainer (with their token).

Registered on ``recarchive qa`` by :mod:`recarchive.cli.qa_cmd`. The same
report as ``GET /api/v1/qa/reports``: a table on standard output, JSON, or
CSV to a file or standard output (docs/qa.md, "Reports").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from recarchive.cli.common import AppContext, echo_list_summary, pass_app
from recarchive.cli.staff import TOKEN_OPTION, staff_actor
from recarchive.private_files import open_private
from recarchive.qa.report_csv import ReportTable, report_csv
from recarchive.qa.reports import build_report


def _figure(value: float | int | None) -> str:
    return "-" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)


def _write(path: Path, text: str) -> None:
    """The CSV to a new file, private to its owner (it is personal data about agents)."""
    try:
        with open_private(path, "xb") as handle:
            handle.write(text.encode("utf-8"))
    except FileExistsError:
        raise click.BadParameter(f"{path} exists", param_hint="--csv") from None
    except OSError as exc:
        raise click.BadParameter(f"{path}: {exc.strerror}", param_hint="--csv") from None


def _echo_table(data: dict[str, Any]) -> None:
    for agent in data["agents"]:
        click.echo(f"agent {agent['agent'] if agent['agent'] is not None else '(none)'}")
        for p in agent["periods"]:
            sampled = ""
            if p["picked"] is not None:
                sampled = f"picked {p['picked']} ({p['withdrawn']} withdrawn)  "
            click.echo(
                f"  {p['period']:<9} {sampled}evaluations {p['evaluations']}  "
                f"avg {_figure(p['average'])}  min {_figure(p['min'])}  max {_figure(p['max'])}  "
                f"critical {p['critical_failures']}  delta {_figure(p['delta'])}"
            )
            for s in p["sections"]:
                click.echo(f"    {s['form']} / {s['title']}: {_figure(s['average'])}")


@click.command("report")
@click.option(
    "--period",
    "period_kind",
    type=click.Choice(["week", "month"]),
    default="week",
    show_default=True,
    help="Report by ISO week or by month.",
)
@click.option("--from", "first", help="The first period (2026-W40, 2026-09); default: 5 before.")
@click.option("--to", "last", help="The last period; default: the current one.")
@click.option("--agent", help="Only this agent.")
@click.option("--queue", help="Only calls of this queue (no sample counts then).")
@click.option(
    "--csv",
    "csv_file",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Write the report as CSV to this file (- for standard output).",
)
@click.option(
    "--table",
    type=click.Choice([t.value for t in ReportTable]),
    default=ReportTable.AGENTS.value,
    show_default=True,
    help="With --csv: a row per agent and period, or per agent, period and section.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@TOKEN_OPTION
@pass_app
def report(
    app: AppContext,
    period_kind: str,
    first: str | None,
    last: str | None,
    agent: str | None,
    queue: str | None,
    csv_file: Path | None,
    table: str,
    as_json: bool,
    token_file: Path | None,
) -> None:
    """Per agent and period: calls sampled, evaluations, scores (by section), the trend.

    Written as a CSV file, the report is a new file readable by you alone.
    """
    output = f"csv:{table}" if csv_file is not None else "json"
    if csv_file is not None and str(csv_file) != "-" and csv_file.exists():
        raise click.BadParameter(f"{csv_file} exists", param_hint="--csv")
    result = build_report(
        app.runtime,
        period_kind=period_kind,
        first=first,
        last=last,
        agent=agent,
        queue=queue,
        actor=staff_actor(app, token_file),
        output=output,
    )
    summary = (
        f"{len(result.agents)} agent(s), {len(result.periods)} period(s) "
        f"{result.periods[0].label} to {result.periods[-1].label}"
    )
    if csv_file is not None:
        text = report_csv(result, table)
        if str(csv_file) == "-":
            click.echo(text, nl=False)
        else:
            _write(csv_file, text)
            click.echo(f"{summary}: written to {csv_file}", err=True)
        return
    data = result.as_dict()
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    _echo_table(data)
    echo_list_summary(summary, after_rows=bool(result.agents))
