"""``recarchive qa``: sampling plans, samples and the training library, for a QA trainer."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import click

from recarchive.cli.common import AppContext, echo_list_summary, pass_app
from recarchive.cli.qa_clip_cmd import clip_group
from recarchive.cli.qa_notes_cmd import note_group
from recarchive.cli.staff import TOKEN_OPTION, staff_actor
from recarchive.qa.plans import (
    Criteria,
    create_plan,
    find_plan,
    list_plans,
    plan_dict,
    revise_plan,
)
from recarchive.qa.sampling import run_sample, show_sample
from recarchive.qa.verify import verify_sample

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _criteria_options(command: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "--calls", "calls", type=int, required=True, help="Calls to pick per agent."
            ),
            click.option(
                "--per",
                "period_kind",
                type=click.Choice(["week", "month"]),
                required=True,
                help="The period a run samples: an ISO week or a month.",
            ),
            click.option("--queue", "queues", multiple=True, help="Only this queue; repeatable."),
            click.option(
                "--reason",
                "reasons",
                multiple=True,
                help="Only calls with this reason code; repeatable (any of them).",
            ),
            click.option(
                "--direction",
                type=click.Choice(["inbound", "outbound", "internal", "unknown"]),
                help="Only calls in this direction.",
            ),
            click.option("--min-duration", type=int, help="Only calls at least this long (s)."),
            click.option("--max-duration", type=int, help="Only calls at most this long (s)."),
            click.option(
                "--not-evaluated",
                is_flag=True,
                help="Only calls without an evaluation yet (any status, any form).",
            ),
        ]
    ):
        command = option(command)
    return command


def _criteria(options: dict[str, Any]) -> Criteria:
    return Criteria(
        calls_per_agent=options["calls"],
        period_kind=options["period_kind"],
        queues=options["queues"],
        reason_codes=options["reasons"],
        direction=options["direction"],
        min_duration_s=options["min_duration"],
        max_duration_s=options["max_duration"],
        not_evaluated=options["not_evaluated"],
    )


def _describe(criteria: dict[str, Any]) -> str:
    parts = [f"{criteria['calls_per_agent']} call(s) per agent per {criteria['period_kind']}"]
    if criteria["queues"]:
        parts.append(f"queues {', '.join(criteria['queues'])}")
    if criteria["reason_codes"]:
        parts.append(f"reasons {', '.join(criteria['reason_codes'])}")
    if criteria["direction"]:
        parts.append(criteria["direction"])
    low, high = criteria["min_duration_s"], criteria["max_duration_s"]
    if low is not None or high is not None:
        parts.append(f"{low if low is not None else 0}-{high if high is not None else ''} s")
    if criteria.get("not_evaluated"):
        parts.append("not yet evaluated")
    return "; ".join(parts)


@click.group("qa")
def qa_group() -> None:
    """QA: sampling plans and their fair samples, notes on calls, scorecard forms and
    evaluations, reports, training clips."""


qa_group.add_command(note_group)


@qa_group.group("plan")
def plan_group() -> None:
    """Define, revise, list and show sampling plans."""


@plan_group.command("add")
@click.argument("name")
@_criteria_options
@JSON_OPTION
@TOKEN_OPTION
@pass_app
def plan_add(
    app: AppContext, /, name: str, as_json: bool, token_file: Path | None, **options: Any
) -> None:
    """Define the sampling plan NAME (version 1)."""
    plan = create_plan(
        app.runtime, name=name, criteria=_criteria(options), actor=staff_actor(app, token_file)
    )
    _echo_plan(plan_dict(plan), as_json)


@plan_group.command("revise")
@click.argument("plan")
@_criteria_options
@JSON_OPTION
@TOKEN_OPTION
@pass_app
def plan_revise(
    app: AppContext, /, plan: str, as_json: bool, token_file: Path | None, **options: Any
) -> None:
    """Give PLAN (name or id) new criteria: its next version; samples keep theirs."""
    actor = staff_actor(app, token_file)
    found = find_plan(app.runtime, plan, actor=actor)
    revised = revise_plan(app.runtime, found.id, criteria=_criteria(options), actor=actor)
    _echo_plan(plan_dict(revised), as_json)


@plan_group.command("list")
@JSON_OPTION
@TOKEN_OPTION
@pass_app
def plan_list(app: AppContext, as_json: bool, token_file: Path | None) -> None:
    """Every sampling plan: id, name, current version, criteria."""
    plans = list_plans(app.runtime, actor=staff_actor(app, token_file))
    for plan in plans:
        data = plan_dict(plan)
        if as_json:
            click.echo(json.dumps(data, ensure_ascii=False))
        else:
            click.echo(
                f"{data['id']}  {data['name']}  v{data['version']}  {_describe(data['criteria'])}"
            )
    if not as_json:
        echo_list_summary(f"{len(plans)} plan(s)", after_rows=bool(plans))


@plan_group.command("show")
@click.argument("plan")
@JSON_OPTION
@TOKEN_OPTION
@pass_app
def plan_show(app: AppContext, plan: str, as_json: bool, token_file: Path | None) -> None:
    """PLAN (name or id) with every version."""
    _echo_plan(plan_dict(find_plan(app.runtime, plan, actor=staff_actor(app, token_file))), as_json)


def _echo_plan(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    click.echo(f"plan {data['id']}  {data['name']}  (version {data['version']})")
    for version in data["versions"]:
        click.echo(
            f"  v{version['version']}  {version['created_at'][:10]}  by {version['created_by']}: "
            f"{_describe(version['criteria'])}"
        )


@qa_group.group("sample")
def sample_group() -> None:
    """Run a plan for a period, show a sample, verify its draw."""


@sample_group.command("run")
@click.argument("plan")
@click.argument("period")
@JSON_OPTION
@TOKEN_OPTION
@pass_app
def sample_run(
    app: AppContext, plan: str, period: str, as_json: bool, token_file: Path | None
) -> None:
    """Run PLAN (name or id) for PERIOD (an ISO week 2026-W49, or a month 2026-11).

    Drawn once per plan version and period: running it again shows the same calls.
    """
    actor = staff_actor(app, token_file)
    found = find_plan(app.runtime, plan, actor=actor)
    view = run_sample(app.runtime, found.id, period, actor=actor)
    _echo_sample(view.as_dict(), as_json)


@sample_group.command("show")
@click.argument("sample_id", type=click.UUID)
@JSON_OPTION
@TOKEN_OPTION
@pass_app
def sample_show(
    app: AppContext, sample_id: uuid.UUID, as_json: bool, token_file: Path | None
) -> None:
    """The calls still in sample SAMPLE_ID, with per-agent counts."""
    view = show_sample(app.runtime, sample_id, actor=staff_actor(app, token_file))
    _echo_sample(view.as_dict(), as_json)


def _echo_sample(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    for item in data["recordings"]:
        click.echo(
            f"{item['id']}  {item['started_at'][:16]}  {item['agent']:<16} "
            f"{item['queue'] or '-':<12} {item['duration_s']:>7.1f} s  {','.join(item['reasons'])}"
        )
    state = "the stored sample (drawn before)" if data["already_drawn"] else "drawn now"
    lines = [
        f"sample {data['id']}: plan {data['plan']['name']} v{data['plan_version']}, "
        f"period {data['period']}, {state} by {data['drawn_by']} at {data['drawn_at'][:19]}",
        f"seed {data['seed']}; {data['candidates']} candidate(s), {data['picked']} picked, "
        f"{data['withdrawn']} withdrawn since",
    ]
    lines += [
        f"  {a['agent']}: {a['picked']} of {a['candidates']} picked"
        + (f", {a['withdrawn']} withdrawn" if a["withdrawn"] else "")
        for a in data["agents"]
    ]
    echo_list_summary("\n".join(lines), after_rows=bool(data["recordings"]))


@sample_group.command("verify")
@click.argument("sample_id", type=click.UUID)
@JSON_OPTION
@TOKEN_OPTION
@pass_app
def sample_verify(
    app: AppContext, sample_id: uuid.UUID, as_json: bool, token_file: Path | None
) -> None:
    """Repeat the draw of SAMPLE_ID from its seed; exit 1 unless its picks are the draw's."""
    result = verify_sample(app.runtime, sample_id, actor=staff_actor(app, token_file))
    data = result.as_dict()
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        for agent in result.agents:
            verdict = "ok" if agent.matches else "MISMATCH"
            click.echo(
                f"{agent.agent}: {agent.picked} of {agent.candidates} picked, "
                f"draw gives {agent.expected}: {verdict}"
            )
        if not result.totals_match:
            click.echo("totals: the sample's counts differ from its stored candidates")
    if not result.ok:
        raise click.ClickException(f"sample {sample_id}: the stored picks are not the draw's")
    echo_list_summary(
        f"sample {sample_id} verified: seed {result.seed} gives the stored picks "
        f"for all {len(result.agents)} agent(s)",
        after_rows=bool(result.agents),
    )


qa_group.add_command(clip_group)


def _add_scorecards() -> None:
    from recarchive.cli.qa_agent_cmd import acknowledge, answer, dispute, my_evaluations
    from recarchive.cli.qa_report_cmd import report
    from recarchive.cli.qa_score_cmd import evaluate, evaluation_group, form_group

    for command in (form_group, evaluate, evaluation_group, report):
        qa_group.add_command(command)
    for command in (my_evaluations, acknowledge, dispute, answer):
        qa_group.add_command(command)


_add_scorecards()
