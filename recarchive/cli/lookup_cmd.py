"""``recarchive lookup`` and ``recarchive get``: the lookup API's search and download from a shell.

Both act as a member of staff, identified by their API token (``--token-file``
or ``RECARCHIVE_USER_TOKEN``), and go through the same role checks, purpose
checks and audit entries as the API: the shell is not a way around them.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import uuid
from pathlib import Path
from typing import IO, Any, cast

import click

from recarchive.cli.common import AppContext, echo_list_summary, human_size, pass_app
from recarchive.cli.staff import TOKEN_OPTION, client_name, principal_from
from recarchive.errors import RecArchiveError
from recarchive.lookup.filters import (
    MAX_LIMIT,
    STARTED_FROM_MEANING,
    STARTED_TO_MEANING,
    SearchFilters,
    parse_filters,
)
from recarchive.lookup.services import open_audio, search
from recarchive.lookup.views import RecordingView
from recarchive.media.transcode import PlaybackFormat, transcode_for_playback
from recarchive.private_files import make_private_dir, open_private


def _line(view: RecordingView, zone: Any) -> str:
    local = view.started_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
    minutes, seconds = divmod(round(view.duration_ms / 1000), 60)
    flags = "".join(
        flag for flag, on in (("H", view.held), ("R", view.restricted), ("O", view.objected)) if on
    )
    who = ""
    if view.identity is not None:
        who = view.identity.get("customer_id") or view.identity.get("match") or ""
    return (
        f"{view.id}  {local}  {minutes:3d}:{seconds:02d}  {view.direction:<8}  "
        f"{(view.agent or '-'):<12}  {(view.queue or '-'):<10}  {who or '-':<12}  "
        f"{','.join(view.reasons) or '-'}  {flags}"
    ).rstrip()


#: The search filters of ``recarchive lookup``, shared by the commands that search
#: (``recarchive case link --search``).
_FILTER_OPTIONS = [
    click.option("--customer", "customer_id", help="Customer id."),
    click.option("--number", help="Caller or called number, any Finnish or E.164 spelling."),
    click.option(
        "--identity-code",
        help="Henkilötunnus or Y-tunnus, matched through its keyed hash ('-' reads it from stdin).",
    ),
    click.option(
        "--from",
        "started_from",
        help=STARTED_FROM_MEANING,
    ),
    click.option(
        "--to",
        "started_to",
        help=STARTED_TO_MEANING,
    ),
    click.option("--reason", multiple=True, help="Reason code (repeatable: any of them)."),
    click.option("--agent", help="Agent, as the telephony system names them (exact match)."),
    click.option("--queue", help="Queue the call came through (exact match)."),
    click.option(
        "--direction",
        type=click.Choice(["inbound", "outbound", "internal", "unknown"]),
        help="Direction of the call.",
    ),
    click.option("--min-duration", type=float, help="Seconds."),
    click.option("--max-duration", type=float, help="Seconds."),
    click.option("--held/--not-held", default=None, help="Only held (or only unheld) recordings."),
]


def search_options(command: Any) -> Any:
    """Give ``command`` the filter options of ``recarchive lookup`` (see :func:`search_filters`)."""
    for option in reversed(_FILTER_OPTIONS):
        command = option(command)
    return command


def search_filters(
    app: AppContext,
    *,
    customer_id: str | None,
    number: str | None,
    identity_code: str | None,
    started_from: str | None,
    started_to: str | None,
    reason: tuple[str, ...],
    agent: str | None,
    queue: str | None,
    direction: str | None,
    min_duration: float | None,
    max_duration: float | None,
    held: bool | None,
    oldest_first: bool = False,
) -> SearchFilters:
    """The search the options of :func:`search_options` ask for, parsed."""
    settings = app.settings
    if identity_code == "-":
        identity_code = sys.stdin.readline().strip()
    return parse_filters(
        customer_id=customer_id,
        number=number,
        identity_code=identity_code,
        identity_key=settings.secret("identity_hash_key") if identity_code else None,
        started_from=started_from,
        started_to=started_to,
        reasons=list(reason),
        agent=agent,
        queue=queue,
        direction=direction,
        min_duration_s=min_duration,
        max_duration_s=max_duration,
        held=held,
        oldest_first=oldest_first,
        region=settings.ingest.default_region,
        timezone=settings.tz,
        taxonomy=tuple(settings.reasons.codes),
    )


@click.command("lookup")
@search_options
@click.option("--oldest-first", is_flag=True, help="Oldest first (default: newest first).")
@click.option(
    "--limit",
    type=click.IntRange(1, 100_000),
    default=50,
    show_default=True,
    help="Most recordings to list.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@TOKEN_OPTION
@pass_app
def lookup_command(
    app: AppContext,
    customer_id: str | None,
    number: str | None,
    identity_code: str | None,
    started_from: str | None,
    started_to: str | None,
    reason: tuple[str, ...],
    agent: str | None,
    queue: str | None,
    direction: str | None,
    min_duration: float | None,
    max_duration: float | None,
    held: bool | None,
    oldest_first: bool,
    limit: int,
    as_json: bool,
    token_file: Path | None,
) -> None:
    """Search the archive as the API does (same roles, same audit), newest first.

    Columns: id, start (local time), duration, direction, agent, queue,
    customer (for roles that see it), reason codes, flags (H held,
    R restricted, O objected to training use).
    """
    principal = principal_from(app, token_file)
    settings = app.settings
    filters = search_filters(
        app,
        customer_id=customer_id,
        number=number,
        identity_code=identity_code,
        started_from=started_from,
        started_to=started_to,
        reason=reason,
        agent=agent,
        queue=queue,
        direction=direction,
        min_duration=min_duration,
        max_duration=max_duration,
        held=held,
        oldest_first=oldest_first,
    )
    shown, cursor = 0, None
    while shown < limit:
        page = search(
            app.runtime,
            principal,
            filters,
            cursor=cursor,
            limit=min(MAX_LIMIT, limit - shown),
            client_addr=client_name(),
        )
        for view in page.items:
            if as_json:
                click.echo(json.dumps(view.as_dict(), ensure_ascii=False))
            else:
                click.echo(_line(view, settings.tz))
        shown += len(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    if not as_json:
        more = " (more: raise --limit)" if cursor is not None else ""
        echo_list_summary(f"{shown} recording(s){more}", after_rows=shown > 0)


@click.command("get")
@click.argument("recording_id", type=click.UUID)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="File to write ('-' for stdout).",
)
@click.option(
    "--purpose",
    required=True,
    type=click.Choice(["training", "dispute", "data_subject_request", "self_review"]),
    help="Why you need the recording (recorded in the audit log).",
)
@click.option("--case", "case_ref", help="Case reference (required for dispute).")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["opus", "mp3", "wav"]),
    help="Transcode (default: the stored audio, checked against its SHA-256).",
)
@TOKEN_OPTION
@pass_app
def get_command(
    app: AppContext,
    recording_id: uuid.UUID,
    output: Path,
    purpose: str,
    case_ref: str | None,
    output_format: str | None,
    token_file: Path | None,
) -> None:
    """Download RECORDING_ID for a stated purpose; audited as a download."""
    principal = principal_from(app, token_file)
    access = open_audio(
        app.runtime,
        principal,
        recording_id,
        purpose=purpose,
        case_ref=case_ref,
        download=True,
        output_format=output_format,
        client_addr=client_name(),
    )
    to_stdout = str(output) == "-"
    if not to_stdout and output.exists():
        raise click.ClickException(f"{output} exists; not overwriting it")
    if output_format is None:
        chunks = access.chunks()
    else:
        chunks = _transcoded(app, access.object_key, access.format, output_format, recording_id)
    if to_stdout:
        written, digest = _write(chunks, sys.stdout.buffer)
    else:
        written, digest = _write_file(chunks, output)
    if output_format is None and digest != access.sha256:
        if not to_stdout:
            output.unlink(missing_ok=True)
        raise click.ClickException(
            f"recording {recording_id}: the stored audio does not match its SHA-256; "
            "nothing was kept (run `recarchive verify`)"
        )
    if not to_stdout:
        click.echo(f"wrote {output} ({human_size(written)})", err=True)


def _write(chunks: Any, stream: IO[bytes]) -> tuple[int, str]:
    digest, written = hashlib.sha256(), 0
    for chunk in chunks:
        stream.write(chunk)
        digest.update(chunk)
        written += len(chunk)
    stream.flush()
    return written, digest.hexdigest()


def _write_file(chunks: Any, output: Path) -> tuple[int, str]:
    """Write beside ``output`` and rename, so a failure never leaves half a file."""
    make_private_dir(output.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as stream:
            result = _write(chunks, stream)
        os.replace(tmp, output)
        return result
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _transcoded(
    app: AppContext, key: str, stored_format: str, fmt: str, recording_id: uuid.UUID
) -> Any:
    with tempfile.TemporaryDirectory(prefix="recarchive-get-") as tmp:
        path = Path(tmp) / f"audio.{stored_format}"
        try:
            with app.runtime.store.get(key) as reader, open_private(path) as out:
                for chunk in reader.iter_chunks():
                    out.write(chunk)
        except RecArchiveError as exc:
            raise click.ClickException(f"recording {recording_id}: {exc.message}") from None
        playback = cast(PlaybackFormat, fmt)  # checked by the --format choice
        yield from transcode_for_playback(
            path, playback, extension=stored_format, label=f"recording {recording_id}"
        )
