"""``recarchive qa note``: a QA trainer's notes on a call's timeline (with their token)."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import click

from recarchive.cli.common import AppContext, echo_list_summary, pass_app
from recarchive.cli.staff import TOKEN_OPTION, staff_actor
from recarchive.qa.notes import NoteView, add_note, delete_note, list_notes

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
_MOMENT = re.compile(r"(?:(\d+):)?(\d+):(\d{1,2})(?:\.(\d{1,3}))?|(\d+)(?:\.(\d{1,3}))?")


def parse_moment(text: str) -> int:
    """Milliseconds from ``1:23``, ``1:02:03``, ``83`` or ``83.5`` (seconds); ValueError if not."""
    match = _MOMENT.fullmatch(text.strip())
    if match is None or not text.isascii():
        raise ValueError(f"{text!r} is not a moment: give M:SS, H:MM:SS or seconds")
    hours, minutes, seconds, fraction, plain, plain_fraction = match.groups()
    if plain is not None:
        whole, part = int(plain), plain_fraction
    else:
        if int(seconds) >= 60 or (hours is not None and int(minutes) >= 60):
            raise ValueError(f"{text!r} is not a moment: seconds and minutes run to 59")
        whole = int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds)
        part = fraction
    return whole * 1000 + (int(part.ljust(3, "0")) if part else 0)


def _moment(_ctx: click.Context, _param: click.Parameter, value: str) -> int:
    try:
        return parse_moment(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def clock(offset_ms: int) -> str:
    """``M:SS`` (``H:MM:SS`` from an hour) of an offset."""
    total = offset_ms // 1000
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def _row(note: NoteView) -> str:
    text = note.text.replace("\n", " / ")
    return (
        f"{note.id}  {clock(note.offset_ms):>8}  {note.visibility.value:<7}  {note.author}: {text}"
    )


@click.group("note")
def note_group() -> None:
    """Notes on a call's timeline: add, list, delete (QA trainers)."""


@note_group.command("add")
@click.argument("recording_id", type=click.UUID)
@click.option(
    "--at", "offset_ms", required=True, callback=_moment, help="Where: M:SS, H:MM:SS or seconds."
)
@click.option("--text", required=True, help="The note (1 to 2000 characters).")
@click.option("--shared", is_flag=True, help="Show it to every QA trainer (default: you alone).")
@JSON_OPTION
@TOKEN_OPTION
@pass_app
def note_add(
    app: AppContext,
    recording_id: uuid.UUID,
    offset_ms: int,
    text: str,
    shared: bool,
    as_json: bool,
    token_file: Path | None,
) -> None:
    """Write a note at a moment of RECORDING_ID."""
    note = add_note(
        app.runtime,
        recording_id,
        offset_ms=offset_ms,
        text=text,
        visibility="shared" if shared else "private",
        actor=staff_actor(app, token_file),
    )
    if as_json:
        click.echo(json.dumps(note.as_dict(), ensure_ascii=False))
    else:
        click.echo(note.id)
        click.echo(f"note added at {clock(note.offset_ms)} ({note.visibility.value})", err=True)


@note_group.command("list")
@click.argument("recording_id", type=click.UUID)
@JSON_OPTION
@TOKEN_OPTION
@pass_app
def note_list(
    app: AppContext, recording_id: uuid.UUID, as_json: bool, token_file: Path | None
) -> None:
    """The notes of RECORDING_ID you may read (yours, and shared ones), by moment."""
    notes = list_notes(app.runtime, recording_id, actor=staff_actor(app, token_file))
    for note in notes:
        click.echo(json.dumps(note.as_dict(), ensure_ascii=False) if as_json else _row(note))
    if not as_json:
        echo_list_summary(f"{len(notes)} note(s)", after_rows=bool(notes))


@note_group.command("delete")
@click.argument("note_id", type=click.UUID)
@TOKEN_OPTION
@pass_app
def note_delete(app: AppContext, note_id: uuid.UUID, token_file: Path | None) -> None:
    """Delete your note NOTE_ID."""
    delete_note(app.runtime, note_id, actor=staff_actor(app, token_file))
    click.echo(f"note {note_id} deleted", err=True)
