"""QA reports: per agent and per period, the sample, the scores, scores by section, the trend.

A report covers a range of weeks or months (:mod:`recarchive.qa.periods`,
in the installation's time zone; by default the last six up to the
current one), for every agent or one, and for every queue or one. For each
agent and period it counts:

- **the sample**: the distinct calls of the agent picked by the samples
  drawn for that period (samples of the report's kind: a week report counts
  week plans, a month report month plans), and how many of them have been
  withdrawn since. A sample's record names calls, not queues, so with a
  queue filter these are not known (None);
- **the evaluations** submitted (any status but ``draft``), each counted
  once, at its current version, in the period its call started in; the
  average, lowest and highest total score, the evaluations with a failed
  critical question, and each section's average (sections belong to a form:
  one figure per form and section id, titled as the newest form version
  used says);
- **the trend**: the average's change from the period before (None for the
  first period of the range, or when either has no score).

Evaluations outlive their calls: everything is read from the evaluation's
copies of the call's agent, queue and start, never from ``recordings``, so
the evaluation of an expired call still counts. Nothing about the caller is
read at all. Averages are exact (fractions of the stored two-decimal scores)
and rounded to two decimals at the end, as :mod:`recarchive.qa.scoring`
does. Every report is audited (``qa.report``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from recarchive.access.actors import Actor
from recarchive.access.audit import append_event
from recarchive.access.policy import Action
from recarchive.catalogue.database import transaction, utcnow
from recarchive.errors import InvalidInputError
from recarchive.parts import Catalogue
from recarchive.qa.models import (
    Evaluation,
    EvaluationStatus,
    EvaluationVersion,
    Form,
    FormVersion,
    PeriodKind,
    Sample,
    SampleCall,
)
from recarchive.qa.periods import Period, parse_period

__all__ = [
    "AgentReport",
    "PeriodFigures",
    "Report",
    "ReportRangeError",
    "SectionFigure",
    "build_report",
    "report_periods",
]

#: The most periods one report covers (two years of weeks).
MAX_PERIODS = 104
#: Periods a report covers when no start is given (the last of them the current one).
DEFAULT_PERIODS = 6


class ReportRangeError(InvalidInputError):
    """the report's range of periods is not valid"""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclasses.dataclass(frozen=True)
class SectionFigure:
    """One section of one form, for one agent and period."""

    form_id: uuid.UUID
    form_name: str
    section_id: str
    title: str
    #: Evaluations in which the section had a score (not every question "na").
    evaluations: int
    average: float | None


@dataclasses.dataclass(frozen=True)
class PeriodFigures:
    """One agent's figures for one period."""

    period: str
    start: dt.datetime
    end: dt.datetime
    #: Distinct calls picked by the period's samples, and of them withdrawn since;
    #: None with a queue filter (a sample does not record its calls' queues).
    picked: int | None
    withdrawn: int | None
    #: Evaluations submitted; of them, those with a total score (not all "na").
    evaluations: int
    scored: int
    average: float | None
    minimum: float | None
    maximum: float | None
    #: Evaluations with at least one failed critical question.
    critical_failures: int
    #: ``average`` minus the previous period's (exact averages, then rounded).
    delta: float | None
    sections: tuple[SectionFigure, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "picked": self.picked,
            "withdrawn": self.withdrawn,
            "evaluations": self.evaluations,
            "scored": self.scored,
            "average": self.average,
            "min": self.minimum,
            "max": self.maximum,
            "critical_failures": self.critical_failures,
            "delta": self.delta,
            "sections": [
                {
                    "form_id": str(s.form_id),
                    "form": s.form_name,
                    "section_id": s.section_id,
                    "title": s.title,
                    "evaluations": s.evaluations,
                    "average": s.average,
                }
                for s in self.sections
            ],
        }


@dataclasses.dataclass(frozen=True)
class AgentReport:
    """One agent (None: calls without one) and a figure for every period of the range."""

    agent: str | None
    periods: tuple[PeriodFigures, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "periods": [p.as_dict() for p in self.periods],
            "trend": [
                {"period": p.period, "average": p.average, "delta": p.delta} for p in self.periods
            ],
        }


@dataclasses.dataclass(frozen=True)
class Report:
    period_kind: PeriodKind
    periods: tuple[Period, ...]
    agent: str | None
    queue: str | None
    agents: tuple[AgentReport, ...]

    @property
    def rows(self) -> int:
        """Agent-by-period rows (what the CSV holds)."""
        return len(self.agents) * len(self.periods)

    def as_dict(self) -> dict[str, Any]:
        return {
            "period_kind": self.period_kind.value,
            "from": self.periods[0].label,
            "to": self.periods[-1].label,
            "agent": self.agent,
            "queue": self.queue,
            "periods": [
                {"period": p.label, "start": p.start.isoformat(), "end": p.end.isoformat()}
                for p in self.periods
            ],
            "agents": [a.as_dict() for a in self.agents],
        }


def _label(day: dt.date, kind: PeriodKind) -> str:
    if kind is PeriodKind.WEEK:
        iso = day.isocalendar()
        return f"{iso.year}-W{iso.week:02d}"
    return f"{day.year}-{day.month:02d}"


def _period_of(moment: dt.datetime, kind: PeriodKind, zone: ZoneInfo) -> Period:
    return parse_period(_label(moment.astimezone(zone).date(), kind), zone)


def _parse(text: str, kind: PeriodKind, zone: ZoneInfo, field: str) -> Period:
    try:
        period = parse_period(text, zone)
    except InvalidInputError as exc:
        raise ReportRangeError(field, exc.message) from None
    if period.kind is not kind:
        example = "2026-W49" if kind is PeriodKind.WEEK else "2026-11"
        raise ReportRangeError(field, f"a {kind.value} report takes periods like {example}")
    return period


def report_periods(
    kind: PeriodKind | str,
    first: str | None,
    last: str | None,
    zone: ZoneInfo,
    now: dt.datetime,
) -> tuple[Period, ...]:
    """The periods from ``first`` to ``last`` (both included); :class:`ReportRangeError`.

    ``last`` defaults to the current period, ``first`` to the period
    :data:`DEFAULT_PERIODS` - 1 before ``last``. At most :data:`MAX_PERIODS`.
    """
    try:
        kind = PeriodKind(kind)
    except ValueError:
        raise ReportRangeError("period", "the period kind is week or month") from None
    end = _parse(last, kind, zone, "to") if last else _period_of(now, kind, zone)
    if first:
        start = _parse(first, kind, zone, "from")
    else:
        start = end
        for _ in range(DEFAULT_PERIODS - 1):
            start = _period_of(start.start - dt.timedelta(seconds=1), kind, zone)
    if start.start > end.start:
        raise ReportRangeError(
            "to", f"the range ends ({end.label}) before it starts ({start.label})"
        )
    periods = [start]
    while periods[-1] != end:
        if len(periods) == MAX_PERIODS:
            raise ReportRangeError(
                "from", f"a report covers at most {MAX_PERIODS} periods: narrow the range"
            )
        periods.append(_period_of(periods[-1].end, kind, zone))
    return tuple(periods)


@dataclasses.dataclass
class _Cell:
    """What is gathered for one agent and period, before the figures are computed."""

    picked: set[uuid.UUID] = dataclasses.field(default_factory=set)
    withdrawn: set[uuid.UUID] = dataclasses.field(default_factory=set)
    evaluations: int = 0
    scores: list[Fraction] = dataclasses.field(default_factory=list)
    critical: int = 0
    #: (form id, section id) -> the section's scores.
    sections: dict[tuple[uuid.UUID, str], list[Fraction]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class _SectionName:
    form_name: str
    title: str
    #: (form version, position): the newest version used names the section.
    rank: tuple[int, int]


def _exact(score: float) -> Fraction:
    """A stored score (two decimals) as the exact decimal it stands for."""
    return Fraction(str(score))


def _round(value: Fraction | None) -> float | None:
    return None if value is None else round(float(value), 2)


def _mean(values: Sequence[Fraction]) -> Fraction | None:
    return sum(values, Fraction(0)) / len(values) if values else None


Cells = dict[tuple[str | None, str], _Cell]


def _gather_samples(
    session: Session, cells: Cells, labels: Sequence[str], agent: str | None
) -> None:
    statement = (
        select(Sample.period, SampleCall.agent, SampleCall.recording_id, SampleCall.withdrawn_at)
        .join(SampleCall, SampleCall.sample_id == Sample.id)
        .where(SampleCall.picked, Sample.period.in_(list(labels)))
    )
    if agent is not None:
        statement = statement.where(SampleCall.agent == agent)
    for period, who, recording_id, withdrawn_at in session.execute(statement):
        cell = cells.setdefault((who, period), _Cell())
        cell.picked.add(recording_id)
        if withdrawn_at is not None:
            cell.withdrawn.add(recording_id)


def _gather_evaluations(
    session: Session,
    cells: Cells,
    periods: Sequence[Period],
    zone: ZoneInfo,
    agent: str | None,
    queue: str | None,
) -> set[uuid.UUID]:
    """Count the submitted evaluations into ``cells``; the form versions they used."""
    kind = periods[0].kind
    statement = (
        select(
            Evaluation.agent,
            Evaluation.started_at,
            EvaluationVersion.score,
            EvaluationVersion.sections,
            EvaluationVersion.critical_failed,
            FormVersion.id,
            FormVersion.form_id,
        )
        .join(
            EvaluationVersion,
            and_(
                EvaluationVersion.evaluation_id == Evaluation.id,
                EvaluationVersion.version == Evaluation.current_version,
            ),
        )
        .join(FormVersion, FormVersion.id == Evaluation.form_version_id)
        .where(
            Evaluation.status != EvaluationStatus.DRAFT,
            Evaluation.started_at >= periods[0].start,
            Evaluation.started_at < periods[-1].end,
        )
    )
    if agent is not None:
        statement = statement.where(Evaluation.agent == agent)
    if queue is not None:
        statement = statement.where(Evaluation.queue == queue)
    used: set[uuid.UUID] = set()
    for who, started_at, score, sections, failed, version_id, form_id in session.execute(statement):
        cell = cells.setdefault((who, _label(started_at.astimezone(zone).date(), kind)), _Cell())
        cell.evaluations += 1
        if score is not None:
            cell.scores.append(_exact(score))
        if failed:
            cell.critical += 1
        for section_id, value in (sections or {}).items():
            if value is not None:
                cell.sections.setdefault((form_id, section_id), []).append(_exact(value))
        used.add(version_id)
    return used


def _section_names(
    session: Session, version_ids: Iterable[uuid.UUID]
) -> dict[tuple[uuid.UUID, str], _SectionName]:
    """(form id, section id) -> its form's name and the title the newest version used gives."""
    names: dict[tuple[uuid.UUID, str], _SectionName] = {}
    rows = session.execute(
        select(FormVersion.form_id, FormVersion.version, FormVersion.definition, Form.name)
        .join(Form, Form.id == FormVersion.form_id)
        .where(FormVersion.id.in_(list(version_ids)))
    )
    for form_id, version, definition, form_name in rows:
        for position, section in enumerate(definition.get("sections", [])):
            key = (form_id, str(section.get("id")))
            name = _SectionName(form_name, str(section.get("title", "")), (version, position))
            if key not in names or names[key].rank < name.rank:
                names[key] = name
    return names


def _figures(
    period: Period,
    cell: _Cell,
    previous: Fraction | None,
    names: dict[tuple[uuid.UUID, str], _SectionName],
    samples_known: bool,
) -> tuple[PeriodFigures, Fraction | None]:
    average = _mean(cell.scores)
    delta = average - previous if average is not None and previous is not None else None

    def order(key: tuple[uuid.UUID, str]) -> tuple[str, str, int, str]:
        name = names[key]
        return (name.form_name, str(key[0]), name.rank[1], key[1])

    sections = tuple(
        SectionFigure(
            key[0],
            names[key].form_name,
            key[1],
            names[key].title,
            len(cell.sections[key]),
            _round(_mean(cell.sections[key])),
        )
        for key in sorted(cell.sections, key=order)
    )
    figures = PeriodFigures(
        period=period.label,
        start=period.start,
        end=period.end,
        picked=len(cell.picked) if samples_known else None,
        withdrawn=len(cell.withdrawn) if samples_known else None,
        evaluations=cell.evaluations,
        scored=len(cell.scores),
        average=_round(average),
        minimum=float(min(cell.scores)) if cell.scores else None,
        maximum=float(max(cell.scores)) if cell.scores else None,
        critical_failures=cell.critical,
        delta=_round(delta),
        sections=sections,
    )
    return figures, average


def _agent_report(
    who: str | None,
    periods: Sequence[Period],
    cells: Cells,
    names: dict[tuple[uuid.UUID, str], _SectionName],
    samples_known: bool,
) -> AgentReport:
    rows = []
    previous: Fraction | None = None
    for period in periods:
        cell = cells.get((who, period.label), _Cell())
        figures, previous = _figures(period, cell, previous, names, samples_known)
        rows.append(figures)
    return AgentReport(who, tuple(rows))


def _clean(value: str | None) -> str | None:
    value = value.strip()[:128] if value else None
    return value or None


def build_report(
    runtime: Catalogue,
    *,
    period_kind: PeriodKind | str,
    first: str | None = None,
    last: str | None = None,
    agent: str | None = None,
    queue: str | None = None,
    actor: Actor,
    output: str = "json",
    now: dt.datetime | None = None,
) -> Report:
    """The report for the range (audited ``qa.report``, with ``output``: how it is delivered)."""
    actor.require(Action.QA_REPORT)
    zone = runtime.settings.tz
    periods = report_periods(period_kind, first, last, zone, now or utcnow())
    agent, queue = _clean(agent), _clean(queue)
    cells: Cells = {}
    with transaction(runtime.sessions) as session:
        if queue is None:
            _gather_samples(session, cells, [p.label for p in periods], agent)
        used = _gather_evaluations(session, cells, periods, zone, agent, queue)
        names = _section_names(session, used)
        agents = {who for who, _ in cells} | ({agent} if agent is not None else set())
        ordered = sorted(agents, key=lambda who: (who is None, who or ""))
        report = Report(
            periods[0].kind,
            periods,
            agent,
            queue,
            tuple(_agent_report(who, periods, cells, names, queue is None) for who in ordered),
        )
        append_event(
            session,
            actor=actor.name,
            actor_role=actor.role_name,
            action="qa.report",
            client_addr=actor.client_addr,
            details={
                "period_kind": report.period_kind.value,
                "from": periods[0].label,
                "to": periods[-1].label,
                "agent": agent,
                "queue": queue,
                "output": output,
                "rows": report.rows,
            },
        )
    return report
