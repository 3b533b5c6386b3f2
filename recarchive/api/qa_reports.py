"""``/api/v1/qa/reports``: QA reports per agent and period, as JSON or CSV, for QA trainers.

The routes translate; :mod:`recarchive.qa.reports` decides who may, counts
and audits, and :mod:`recarchive.qa.report_csv` writes the CSV. The JSON is
shaped for a page: the range's periods, then a list of agents, each with a
figure for every period of the range (docs/qa.md, "Reports").
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from recarchive.access.actors import Actor
from recarchive.api.deps import ClientDep, PrincipalDep, RuntimeDep
from recarchive.api.schemas import COMMON_ERRORS, ErrorOut
from recarchive.qa.report_csv import ReportTable, report_csv
from recarchive.qa.reports import MAX_PERIODS, Report, build_report

router = APIRouter(prefix="/api/v1/qa", tags=["qa"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    **COMMON_ERRORS,
    403: {"model": ErrorOut, "description": "Only QA trainers read QA reports."},
    422: {
        "model": ErrorOut,
        "description": (
            "A parameter is not valid (`field` names it): a period of the other kind, a range "
            f"that ends before it starts or covers more than {MAX_PERIODS} periods."
        ),
    },
}

PeriodKindQuery = Annotated[
    Literal["week", "month"], Query(description="Weeks (ISO, Monday to Monday) or months.")
]
FromQuery = Annotated[
    str | None,
    Query(
        alias="from",
        max_length=16,
        description="The first period (2026-W40, 2026-09); default: five before `to`.",
    ),
]
ToQuery = Annotated[
    str | None,
    Query(alias="to", max_length=16, description="The last period; default: the current one."),
]
AgentQuery = Annotated[
    str | None, Query(max_length=128, description="Only this agent (empty: every agent).")
]
QueueQuery = Annotated[
    str | None, Query(max_length=128, description="Only calls of this queue (empty: every one).")
]


class SectionFigureOut(BaseModel):
    form_id: uuid.UUID
    form: str
    section_id: str
    title: str
    evaluations: int = Field(description="Evaluations in which the section had a score.")
    average: float | None


class PeriodFiguresOut(BaseModel):
    period: str
    start: dt.datetime
    end: dt.datetime
    picked: int | None = Field(description="Calls picked by the period's samples; null: queue.")
    withdrawn: int | None = Field(description="Of them, withdrawn since; null with a queue.")
    evaluations: int = Field(description="Evaluations submitted (current versions, no drafts).")
    scored: int = Field(description="Of them, those with a total score.")
    average: float | None
    min: float | None
    max: float | None
    critical_failures: int = Field(description="Evaluations with a failed critical question.")
    delta: float | None = Field(description="The average's change from the period before.")
    sections: list[SectionFigureOut]


class TrendPointOut(BaseModel):
    period: str
    average: float | None
    delta: float | None


class AgentReportOut(BaseModel):
    agent: str | None = Field(description="null: evaluated calls that had no agent.")
    periods: list[PeriodFiguresOut]
    trend: list[TrendPointOut]


class PeriodOut(BaseModel):
    period: str
    start: dt.datetime
    end: dt.datetime


class ReportOut(BaseModel):
    period_kind: str
    from_: str = Field(alias="from")
    to: str
    agent: str | None
    queue: str | None
    periods: list[PeriodOut]
    agents: list[AgentReportOut]


def _report(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    client: ClientDep,
    *,
    period: str,
    first: str | None,
    last: str | None,
    agent: str | None,
    queue: str | None,
    output: str,
) -> Report:
    return build_report(
        runtime,
        period_kind=period,
        first=first,
        last=last,
        agent=agent,
        queue=queue,
        actor=Actor.staff(principal, client),
        output=output,
    )


@router.get("/reports", response_model=ReportOut, response_model_by_alias=True, responses=_ERRORS)
def reports_get(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    client: ClientDep,
    period: PeriodKindQuery = "week",
    first: FromQuery = None,
    last: ToQuery = None,
    agent: AgentQuery = None,
    queue: QueueQuery = None,
) -> dict[str, Any]:
    """Per agent and period: the sample, the evaluations' scores, by section, and the trend."""
    report = _report(
        runtime, principal, client, period=period, first=first, last=last,
        agent=agent, queue=queue, output="json",
    )  # fmt: skip
    return report.as_dict()


@router.get(
    "/reports.csv",
    response_class=Response,
    responses={
        **_ERRORS,
        200: {"content": {"text/csv": {}}, "description": "The report as CSV (docs/qa.md)."},
    },
)
def reports_csv(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    client: ClientDep,
    period: PeriodKindQuery = "week",
    first: FromQuery = None,
    last: ToQuery = None,
    agent: AgentQuery = None,
    queue: QueueQuery = None,
    table: Annotated[
        ReportTable,
        Query(description="agents: a row per agent and period; sections: per section too."),
    ] = ReportTable.AGENTS,
) -> Response:
    """The report as CSV, to download: one row per agent and period (or per section)."""
    report = _report(
        runtime, principal, client, period=period, first=first, last=last,
        agent=agent, queue=queue, output=f"csv:{table.value}",
    )  # fmt: skip
    name = f"qa-report-{report.periods[0].label}-{report.periods[-1].label}-{table.value}.csv"
    return Response(
        report_csv(report, table),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
