"""``recarchive qa clip``: the training library, for a QA trainer (with their token)."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from pathlib import Path
from typing import Any

import click

from recarchive.cli.common import AppContext, echo_list_summary, parse_time, pass_app
from recarchive.cli.staff import TOKEN_OPTION, staff_actor
from recarchive.qa.clips import clip_dict, create_clip, delete_clip, keep_clip, list_clips

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON.")

_TIME = re.compile(r"^(?:(?:(\d+):)?(\d+):)?(\d+)(?:\.(\d{1,3}))?$")


def parse_offset(text: str, option: str) -> int:
    """``1:02``, ``1:02.5``, ``0:01:02`` or ``62`` (seconds) as milliseconds into the call."""
    match = _TIME.match(text.strip())
    if match is None:
        raise click.BadParameter(f"not a time in the call: {text!r} (e.g. 1:02)", param_hint=option)
    hours, minutes, seconds, fraction = match.groups()
    total = int(hours or 0) * 3600 + int(minutes or 0) * 60 + int(seconds)
    return total * 1000 + int((fraction or "0").ljust(3, "0"))


def _until(text: str, tz: dt.tzinfo) -> dt.datetime:
    """A date (kept to the end of that day, in the installation's zone) or an ISO time."""
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        value = parse_time(text, "--until")
        assert value is not None
        return value
    end = dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=tz)
    return end.astimezone(dt.UTC)


def _ms(value: int) -> str:
    seconds, ms = divmod(value, 1000)
    return f"{seconds // 60}:{seconds % 60:02d}.{ms:03d}"


def _echo(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    kept = f"  kept until {data['kept_until'][:10]}" if data["kept_until"] else ""
    voices = "agent only" if data["agent_only"] else "both voices"
    click.echo(
        f"{data['id']}  {data['recording_id']}  {_ms(data['start_ms'])}-{_ms(data['end_ms'])}  "
        f"{voices}  until {data['retain_until'][:10]}{kept}  {data['title']}"
    )


@click.group("clip")
def clip_group() -> None:
    """The training library: cut, list, keep and delete clips of calls."""


@clip_group.command("add")
@click.argument("recording_id", type=click.UUID)
@click.option("--start", required=True, help="Where the clip starts in the call (1:02).")
@click.option("--end", required=True, help="Where it ends (1:40); ten minutes at most.")
@click.option("--title", required=True, help="The clip's title.")
@click.option("--purpose", required=True, help="What the clip teaches.")
@click.option(
    "--agent-only",
    is_flag=True,
    help="Keep the agent's channel alone (split-leg calls): such a clip may be kept longer.",
)
@JSON_OPTION
@TOKEN_OPTION
@pass_app
def clip_add(
    app: AppContext,
    /,
    recording_id: uuid.UUID,
    start: str,
    end: str,
    title: str,
    purpose: str,
    agent_only: bool,
    as_json: bool,
    token_file: Path | None,
) -> None:
    """Cut START..END of RECORDING_ID into the library."""
    clip = create_clip(
        app.runtime,
        recording_id,
        start_ms=parse_offset(start, "--start"),
        end_ms=parse_offset(end, "--end"),
        title=title,
        purpose=purpose,
        agent_only=agent_only,
        actor=staff_actor(app, token_file),
    )
    _echo(clip_dict(clip), as_json)
    if not as_json:
        click.echo("clip cut; it expires with its call unless kept (agent-only clips)", err=True)


@clip_group.command("list")
@JSON_OPTION
@TOKEN_OPTION
@pass_app
def clip_list(app: AppContext, as_json: bool, token_file: Path | None) -> None:
    """Every clip in the library: id, call, span, voices, until when, title."""
    clips = list_clips(app.runtime, actor=staff_actor(app, token_file))
    for clip in clips:
        _echo(clip_dict(clip), as_json)
    if not as_json:
        echo_list_summary(f"{len(clips)} clip(s)", after_rows=bool(clips))


@clip_group.command("keep")
@click.argument("clip_id", type=click.UUID)
@click.option("--until", required=True, help="A date (to its end) or an ISO time with a zone.")
@click.option("--reason", required=True, help="Why the clip is kept beyond its call.")
@JSON_OPTION
@TOKEN_OPTION
@pass_app
def clip_keep(
    app: AppContext,
    /,
    clip_id: uuid.UUID,
    until: str,
    reason: str,
    as_json: bool,
    token_file: Path | None,
) -> None:
    """Keep the agent-only clip CLIP_ID until --until, beyond its call (a recorded decision)."""
    clip = keep_clip(
        app.runtime,
        clip_id,
        until=_until(until, app.settings.tz),
        reason=reason,
        actor=staff_actor(app, token_file),
    )
    _echo(clip_dict(clip), as_json)


@clip_group.command("delete")
@click.argument("clip_id", type=click.UUID)
@TOKEN_OPTION
@pass_app
def clip_delete(app: AppContext, clip_id: uuid.UUID, token_file: Path | None) -> None:
    """Delete the clip CLIP_ID from the library (its audio and its record)."""
    delete_clip(app.runtime, clip_id, actor=staff_actor(app, token_file))
    click.echo(f"clip {clip_id} deleted", err=True)
