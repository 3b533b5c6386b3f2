"""``recarchive qa my-evaluations|acknowledge|dispute|answer``: an agent's own
evaluations, and a QA trainer's answer to a dispute (each with their own token).

Registered on ``recarchive qa`` by :mod:`recarchive.cli.qa_cmd`; the rules
(what the agent sees, one dispute, the window) are
:mod:`recarchive.qa.agent_reviews`'.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import click

from recarchive.cli.common import AppContext, echo_list_summary, pass_app
from recarchive.cli.staff import TOKEN_OPTION, staff_actor
from recarchive.qa.agent_reviews import (
    acknowledge_evaluation,
    answer_dispute,
    dispute_evaluation,
    list_own_evaluations,
)

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
COMMENT_OPTION = click.option(
    "--comment", required=True, help="Why (up to 2000 characters; kept with the evaluation)."
)


def _score(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _line(data: dict[str, Any]) -> str:
    until = data.get("dispute_until")
    window = f"  dispute until {until[:16]}" if until else ""
    return (
        f"{data['id']}  {data['status']:<16}  score {_score(data['score'])}  "
        f"call {data['recording_id']}  {data['started_at'][:10]}  "
        f"agent {data['agent'] or '-'}  v{data['version']}{window}"
    )


def _echo(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    click.echo(f"evaluation {_line(data)}")
    for response in data["responses"]:
        comment = f": {response['comment']}" if response["comment"] else ""
        click.echo(
            f"  {response['at'][:16]}  {response['kind']} (v{response['version']}) "
            f"by {response['by']}{comment}"
        )


@click.command("my-evaluations")
@JSON_OPTION
@TOKEN_OPTION
@pass_app
def my_evaluations(app: AppContext, as_json: bool, token_file: Path | None) -> None:
    """Your evaluations (an agent's): submitted ones of your calls, newest first."""
    items = list_own_evaluations(app.runtime, actor=staff_actor(app, token_file))
    for item in items:
        data = item.as_dict()
        click.echo(json.dumps(data, ensure_ascii=False) if as_json else _line(data))
    if not as_json:
        echo_list_summary(f"{len(items)} evaluation(s)", after_rows=bool(items))


@click.command("acknowledge")
@click.argument("evaluation_id", type=click.UUID)
@JSON_OPTION
@TOKEN_OPTION
@pass_app
def acknowledge(
    app: AppContext, evaluation_id: uuid.UUID, as_json: bool, token_file: Path | None
) -> None:
    """Acknowledge your evaluation EVALUATION_ID (its current version)."""
    actor = staff_actor(app, token_file)
    _echo(acknowledge_evaluation(app.runtime, evaluation_id, actor=actor).as_dict(), as_json)


@click.command("dispute")
@click.argument("evaluation_id", type=click.UUID)
@COMMENT_OPTION
@JSON_OPTION
@TOKEN_OPTION
@pass_app
def dispute(
    app: AppContext, evaluation_id: uuid.UUID, comment: str, as_json: bool, token_file: Path | None
) -> None:
    """Dispute your evaluation EVALUATION_ID: once, within the window (qa.dispute_window_days)."""
    actor = staff_actor(app, token_file)
    view = dispute_evaluation(app.runtime, evaluation_id, comment, actor=actor)
    _echo(view.as_dict(), as_json)


@click.command("answer")
@click.argument("evaluation_id", type=click.UUID)
@COMMENT_OPTION
@JSON_OPTION
@TOKEN_OPTION
@pass_app
def answer(
    app: AppContext, evaluation_id: uuid.UUID, comment: str, as_json: bool, token_file: Path | None
) -> None:
    """Answer the agent's dispute of EVALUATION_ID (a QA trainer's)."""
    actor = staff_actor(app, token_file)
    _echo(answer_dispute(app.runtime, evaluation_id, comment, actor=actor).as_dict(), as_json)
