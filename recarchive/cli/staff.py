"""Acting as a member of staff from a shell: the person's own API token, never a name.

Every command that acts for a person (lookups, holds, subject requests)
takes their token (``--token-file`` or ``RECARCHIVE_USER_TOKEN``) and goes
through the same role checks and audit entries as the API: the shell is
not a way around them.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import click

from recarchive.access.actors import Actor
from recarchive.access.policy import Action, require
from recarchive.access.services import InvalidToken, Principal, authenticate
from recarchive.catalogue.revision import require_current_schema
from recarchive.cli.common import AppContext

TOKEN_ENV = "RECARCHIVE_USER_TOKEN"  # noqa: S105 - the variable's name, not a token


def client_name() -> str:
    return f"shell:{socket.gethostname()}"[:64]


def principal_from(app: AppContext, token_file: Path | None, *, subject: bool = False) -> Principal:
    """The staff member whose token is given; with ``subject``, one who may handle requests."""
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise click.BadParameter(
                f"cannot read {token_file}: {exc.strerror}", param_hint="--token-file"
            ) from None
    else:
        token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise click.UsageError(f"give your API token with --token-file FILE or {TOKEN_ENV}")
    require_current_schema(app.runtime.engine)
    try:
        principal = authenticate(app.runtime, token)
    except InvalidToken as exc:
        raise click.ClickException(exc.message) from None
    if subject:
        require(principal.role, Action.SUBJECT)
    return principal


TOKEN_OPTION = click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"File holding your API token (default: ${TOKEN_ENV}).",
)


def staff_actor(app: AppContext, token_file: Path | None) -> Actor:
    """The member of staff whose token is given, acting from this shell."""
    return Actor.staff(principal_from(app, token_file), client_name())
