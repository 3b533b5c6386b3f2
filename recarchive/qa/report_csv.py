"""A QA report as CSV: one row per agent and period, or one per agent, period and section.

The columns are documented in docs/qa.md ("Reports"). Agent ids, form names
and section titles come from outside (the telephony system, trainers), and
a spreadsheet runs a cell that starts like a formula: such a cell (``=``,
``+``, ``-``, ``@``, tab, carriage return) gets a leading ``'``, so it is
shown as the text it is. Numbers are written by the archive and left as
they are; an empty cell is a figure that does not exist (no score, or
sample counts with a queue filter).
"""

from __future__ import annotations

import csv
import enum
import io
from collections.abc import Iterator, Sequence

from recarchive.qa.reports import Report

__all__ = ["AGENT_COLUMNS", "SECTION_COLUMNS", "ReportTable", "neutralise", "report_csv"]

AGENT_COLUMNS = (
    "agent",
    "period",
    "period_start",
    "period_end",
    "picked",
    "withdrawn",
    "evaluations",
    "scored",
    "average",
    "min",
    "max",
    "critical_failures",
    "delta",
)
SECTION_COLUMNS = (
    "agent",
    "period",
    "form_id",
    "form",
    "section_id",
    "section_title",
    "evaluations",
    "average",
)

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class ReportTable(enum.StrEnum):
    """Which table of a report a CSV holds."""

    AGENTS = "agents"
    SECTIONS = "sections"


def neutralise(text: str) -> str:
    """``text``, with a leading ``'`` if a spreadsheet would read it as a formula."""
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return neutralise(value)
    return str(value)


def _agent_rows(report: Report) -> Iterator[Sequence[object]]:
    for agent in report.agents:
        for p in agent.periods:
            yield (
                agent.agent,
                p.period,
                p.start.isoformat(),
                p.end.isoformat(),
                p.picked,
                p.withdrawn,
                p.evaluations,
                p.scored,
                p.average,
                p.minimum,
                p.maximum,
                p.critical_failures,
                p.delta,
            )


def _section_rows(report: Report) -> Iterator[Sequence[object]]:
    for agent in report.agents:
        for p in agent.periods:
            for s in p.sections:
                yield (
                    agent.agent,
                    p.period,
                    str(s.form_id),
                    s.form_name,
                    s.section_id,
                    s.title,
                    s.evaluations,
                    s.average,
                )


def report_csv(report: Report, table: ReportTable | str = ReportTable.AGENTS) -> str:
    """The report's ``table`` as CSV text (a header row, then the rows; CRLF line ends)."""
    table = ReportTable(table)
    columns, rows = (
        (AGENT_COLUMNS, _agent_rows(report))
        if table is ReportTable.AGENTS
        else (SECTION_COLUMNS, _section_rows(report))
    )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(value) for value in row])
    return out.getvalue()
