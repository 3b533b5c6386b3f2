"""``recarchive qa form|evaluate|evaluation``: scorecards, for a QA trainer (with their token).

Registered on ``recarchive qa`` by :mod:`recarchive.cli.qa_cmd`.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import click

from recarchive.cli.common import AppContext, echo_list_summary, pass_app
from recarchive.cli.staff import TOKEN_OPTION, staff_actor
from recarchive.qa.evaluation_notes import attach_notes, detach_note
from recarchive.qa.evaluations import create_evaluation, get_evaluation, revise_evaluation
from recarchive.qa.scorecards import create_form, find_form, form_dict, list_forms, revise_form

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
#: The largest form or answers file read (a form holds at most 200 questions).
MAX_FILE_BYTES = 1_000_000
FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def _read_json(path: Path, what: str) -> Any:
    if path.stat().st_size > MAX_FILE_BYTES:
        raise click.BadParameter(f"{path} is larger than {MAX_FILE_BYTES} bytes", param_hint=what)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise click.BadParameter(f"{path} is not JSON: {exc}", param_hint=what) from None


@click.group("form")
def form_group() -> None:
    """Define, revise, list and show scorecard forms."""


@form_group.command("add")
@click.argument("file", type=FILE)
@JSON_OPTION
@TOKEN_OPTION
@pass_app
def form_add(app: AppContext, /, file: Path, as_json: bool, token_file: Path | None) -> None:
    """Define a form from FILE (JSON: name, description, sections; docs/qa.md)."""
    data = _read_json(file, "FILE")
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise click.BadParameter("the form needs a name (a string)", param_hint="FILE")
    definition = {k: v for k, v in data.items() if k != "name"}
    form = create_form(
        app.runtime, name=data["name"], definition=definition, actor=staff_actor(app, token_file)
    )
    _echo_form(form_dict(form), as_json)


@form_group.command("revise")
@click.argument("form")
@click.argument("file", type=FILE)
@JSON_OPTION
@TOKEN_OPTION
@pass_app
def form_revise(
    app: AppContext, /, form: str, file: Path, as_json: bool, token_file: Path | None
) -> None:
    """Give FORM (name or id) the sections of FILE: its next version."""
    actor = staff_actor(app, token_file)
    data = _read_json(file, "FILE")
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k != "name"}
    found = find_form(app.runtime, form, actor=actor)
    _echo_form(form_dict(revise_form(app.runtime, found.id, definition=data, actor=actor)), as_json)


@form_group.command("list")
@JSON_OPTION
@TOKEN_OPTION
@pass_app
def form_list(app: AppContext, as_json: bool, token_file: Path | None) -> None:
    """Every form: id, name, current version and its id."""
    forms = list_forms(app.runtime, actor=staff_actor(app, token_file))
    for form in forms:
        data = form_dict(form)
        if as_json:
            click.echo(json.dumps(data, ensure_ascii=False))
        else:
            click.echo(
                f"{data['id']}  {data['name']}  v{data['version']} ({data['current_version_id']})"
            )
    if not as_json:
        echo_list_summary(f"{len(forms)} form(s)", after_rows=bool(forms))


@form_group.command("show")
@click.argument("form")
@JSON_OPTION
@TOKEN_OPTION
@pass_app
def form_show(app: AppContext, form: str, as_json: bool, token_file: Path | None) -> None:
    """FORM (name or id) with every version."""
    _echo_form(form_dict(find_form(app.runtime, form, actor=staff_actor(app, token_file))), as_json)


def _echo_form(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    click.echo(f"form {data['id']}  {data['name']}  (version {data['version']})")
    for version in data["versions"]:
        sections = version["definition"]["sections"]
        questions = sum(len(s["questions"]) for s in sections)
        click.echo(
            f"  v{version['version']}  {version['id']}  {version['created_at'][:10]}  "
            f"by {version['created_by']}: {len(sections)} section(s), {questions} question(s)"
        )


@click.command("evaluate")
@click.argument("recording_id", type=click.UUID)
@click.option("--form", "form", required=True, help="The form (name or id): its current version.")
@click.option("--answers", "answers_file", type=FILE, required=True, help="Answers (JSON).")
@click.option("--submit", is_flag=True, help="Submit it (not a draft).")
@JSON_OPTION
@TOKEN_OPTION
@pass_app
def evaluate(
    app: AppContext,
    recording_id: uuid.UUID,
    form: str,
    answers_file: Path,
    submit: bool,
    as_json: bool,
    token_file: Path | None,
) -> None:
    """Score the call RECORDING_ID against a form; the archive computes the score."""
    actor = staff_actor(app, token_file)
    answers = _read_json(answers_file, "--answers")
    found = form_dict(find_form(app.runtime, form, actor=actor))
    view = create_evaluation(
        app.runtime,
        recording_id=recording_id,
        form_version_id=uuid.UUID(found["current_version_id"]),
        answers=answers,
        submit=submit,
        actor=actor,
    )
    _echo_evaluation(view.as_dict(), view.versions(), as_json)


@click.group("evaluation")
def evaluation_group() -> None:
    """Show and change evaluations."""


@evaluation_group.command("show")
@click.argument("evaluation_id", type=click.UUID)
@JSON_OPTION
@TOKEN_OPTION
@pass_app
def evaluation_show(
    app: AppContext, evaluation_id: uuid.UUID, as_json: bool, token_file: Path | None
) -> None:
    """EVALUATION_ID: its current answers and scores, and every version."""
    view = get_evaluation(app.runtime, evaluation_id, actor=staff_actor(app, token_file))
    _echo_evaluation(view.as_dict(), view.versions(), as_json)


@evaluation_group.command("revise")
@click.argument("evaluation_id", type=click.UUID)
@click.option("--answers", "answers_file", type=FILE, required=True, help="Answers (JSON).")
@click.option("--submit", is_flag=True, help="Submit it (not a draft).")
@JSON_OPTION
@TOKEN_OPTION
@pass_app
def evaluation_revise(
    app: AppContext,
    evaluation_id: uuid.UUID,
    answers_file: Path,
    submit: bool,
    as_json: bool,
    token_file: Path | None,
) -> None:
    """Change EVALUATION_ID: a new version; the last one is kept, superseded."""
    actor = staff_actor(app, token_file)
    answers = _read_json(answers_file, "--answers")
    view = revise_evaluation(
        app.runtime, evaluation_id, answers=answers, submit=submit, actor=actor
    )
    _echo_evaluation(view.as_dict(), view.versions(), as_json)


@evaluation_group.command("attach-notes")
@click.argument("evaluation_id", type=click.UUID)
@click.argument("note_ids", type=click.UUID, nargs=-1, required=True)
@JSON_OPTION
@TOKEN_OPTION
@pass_app
def evaluation_attach_notes(
    app: AppContext,
    evaluation_id: uuid.UUID,
    note_ids: tuple[uuid.UUID, ...],
    as_json: bool,
    token_file: Path | None,
) -> None:
    """Attach NOTE_IDS (notes of the call) to EVALUATION_ID: kept with it after the call."""
    actor = staff_actor(app, token_file)
    notes = attach_notes(app.runtime, evaluation_id, list(note_ids), actor=actor)
    _echo_notes(notes, as_json)


@evaluation_group.command("detach-note")
@click.argument("evaluation_id", type=click.UUID)
@click.argument("note_id", type=click.UUID)
@JSON_OPTION
@TOKEN_OPTION
@pass_app
def evaluation_detach_note(
    app: AppContext,
    evaluation_id: uuid.UUID,
    note_id: uuid.UUID,
    as_json: bool,
    token_file: Path | None,
) -> None:
    """Remove NOTE_ID's copy from EVALUATION_ID (the note on the call, if any, stays)."""
    actor = staff_actor(app, token_file)
    notes = detach_note(app.runtime, evaluation_id, note_id, actor=actor)
    _echo_notes(notes, as_json)


def _echo_notes(notes: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"items": notes}, ensure_ascii=False, indent=2))
        return
    click.echo(f"{len(notes)} note(s) belong to the evaluation")
    for note in notes:
        seconds = note["offset_ms"] / 1000
        click.echo(f"  {int(seconds // 60)}:{seconds % 60:04.1f}  {note['author']}: {note['text']}")


def _score(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _echo_evaluation(data: dict[str, Any], versions: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({**data, "versions": versions}, ensure_ascii=False, indent=2))
        return
    form = data["form"]
    click.echo(
        f"evaluation {data['id']}  {data['status']}  score {_score(data['score'])}  "
        f"(version {data['version']})"
    )
    click.echo(
        f"  call {data['recording_id']}  agent {data['agent'] or '-'}  "
        f"form {form['name']} v{form['version']}"
    )
    for section, value in data["sections"].items():
        click.echo(f"  {section}: {_score(value)}")
    if data["critical_failed"]:
        click.echo(f"  critical failed: {', '.join(data['critical_failed'])}")
    if data.get("notes"):
        click.echo(f"  notes: {len(data['notes'])} (qa evaluation show --json for their text)")
    for v in versions:
        state = f"superseded by {v['superseded_by']}" if v["superseded"] else "current"
        click.echo(
            f"  v{v['version']}  {v['saved_at'][:19]}  by {v['saved_by']}  "
            f"{v['status']}  {_score(v['score'])}  {state}"
        )
