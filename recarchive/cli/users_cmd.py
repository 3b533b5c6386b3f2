"""``recarchive users``: staff users and their API tokens, managed by an admin.

Every command takes the admin's own token (``--token-file`` or
``RECARCHIVE_USER_TOKEN``), like the API. Without one, the operating
system's root on the archive's host (or the account that owns the
installation's secrets, :func:`may_bootstrap`) may create an admin or
issue an admin a token while no admin can act: the first admin of an
installation, or the way back in when every admin's token has expired
(:func:`~recarchive.access.users.bootstrap_admin`, audited as the system).
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path

import click

from recarchive.access.actors import Actor
from recarchive.access.agent_ids import link_agent_id, unlink_agent_id
from recarchive.access.models import Role
from recarchive.access.services import IssuedToken
from recarchive.access.users import (
    add_user,
    bootstrap_admin,
    disable_user,
    issue_token,
    list_tokens,
    list_users,
    revoke_token,
    show_user,
)
from recarchive.catalogue.revision import require_current_schema
from recarchive.cli.common import AppContext, pass_app
from recarchive.cli.staff import TOKEN_ENV, TOKEN_OPTION, staff_actor

days_option = click.option(
    "--days", default=90, show_default=True, help="Days until the token expires."
)
description_option = click.option(
    "--description", help="What the token is for (e.g. the machine it is used on)."
)


def _show_token(issued: IssuedToken) -> None:
    """The token alone on stdout (so it can be captured); the notice on stderr."""
    click.echo(
        f"token {issued.token_id} for {issued.user_name}, "
        f"expires {issued.expires_at:%Y-%m-%d %H:%M} UTC:",
        err=True,
    )
    click.echo(issued.token)
    click.echo(f"Give this token to {issued.user_name} now: it cannot be shown again.", err=True)


def _token_given(token_file: Path | None) -> bool:
    return token_file is not None or bool(os.environ.get(TOKEN_ENV, "").strip())


def may_bootstrap(euid: int, secrets_dir: Path) -> bool:
    """Whether this OS user may bootstrap an admin: root, or the owner of the secrets.

    The account that owns ``<data_dir>/secrets`` (mode 0700: the token pepper,
    the audit keys) could forge tokens and audit entries without recarchive,
    so letting it create the first admin gives it nothing it lacks; any
    other account is refused.
    """
    if euid == 0:
        return True
    try:
        return secrets_dir.stat().st_uid == euid
    except OSError:
        return False


def _bootstrap(
    app: AppContext, name: str, days: int, description: str | None, *, create: bool
) -> IssuedToken:
    """The way to an admin while no admin can act (the service checks that part)."""
    if not may_bootstrap(os.geteuid(), app.settings.general.data_dir / "secrets"):
        raise click.UsageError(
            f"give an admin's API token with --token-file FILE or {TOKEN_ENV} "
            "(without one, only root on the archive's host, or the account that owns "
            "its secrets, may create the first admin)"
        )
    require_current_schema(app.runtime.engine)
    issued = bootstrap_admin(
        app.runtime,
        name,
        actor=Actor.system(),
        create=create,
        token_days=days,
        description=description,
    )
    click.echo(f"bootstrap: {name} is an admin; manage users with this token from now on", err=True)
    return issued


@click.group("users")
def users_group() -> None:
    """Staff users, their roles and API tokens (an admin's, with their token)."""


@users_group.command("add")
@click.argument("name")
@click.option(
    "--role",
    required=True,
    help="qa_trainer, dispute_handler, privacy_officer, auditor, admin or agent.",
)
@days_option
@description_option
@TOKEN_OPTION
@pass_app
def add_command(
    app: AppContext,
    name: str,
    role: str,
    days: int,
    description: str | None,
    token_file: Path | None,
) -> None:
    """Add user NAME with ROLE and print a first API token (shown only once).

    With no token given, root may add the first admin (--role admin) while
    no admin can act.
    """
    if not _token_given(token_file) and role == Role.ADMIN.value:
        _show_token(_bootstrap(app, name, days, description, create=True))
        return
    actor = staff_actor(app, token_file)
    issued = add_user(
        app.runtime, name, role, actor=actor, token_days=days, description=description
    )
    click.echo(f"user {name} added with role {role}", err=True)
    _show_token(issued)


@users_group.command("token")
@click.argument("name")
@days_option
@description_option
@TOKEN_OPTION
@pass_app
def token_command(
    app: AppContext, name: str, days: int, description: str | None, token_file: Path | None
) -> None:
    """Issue another API token to user NAME (shown only once).

    With no token given, root may issue an admin a token while no admin can
    act (every admin's token expired or revoked).
    """
    if not _token_given(token_file):
        _show_token(_bootstrap(app, name, days, description, create=False))
        return
    actor = staff_actor(app, token_file)
    _show_token(issue_token(app.runtime, name, actor=actor, days=days, description=description))


@users_group.command("revoke")
@click.argument("token_id", type=click.UUID)
@TOKEN_OPTION
@pass_app
def revoke_command(app: AppContext, token_id: uuid.UUID, token_file: Path | None) -> None:
    """Revoke the token TOKEN_ID (the 32 hex digits after rca_): it stops working now."""
    user_name = revoke_token(app.runtime, token_id, actor=staff_actor(app, token_file))
    click.echo(f"token {token_id} of {user_name} revoked")


@users_group.command("disable")
@click.argument("name")
@TOKEN_OPTION
@pass_app
def disable_command(app: AppContext, name: str, token_file: Path | None) -> None:
    """Disable user NAME and revoke all their tokens."""
    revoked = disable_user(app.runtime, name, actor=staff_actor(app, token_file))
    click.echo(f"user {name} disabled; {revoked} token(s) revoked")


def _day(value: dt.datetime | None) -> str:
    return f"{value:%Y-%m-%d}" if value else "-"


def _minute(value: dt.datetime | None, default: str = "never") -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value else default


@users_group.command("list")
@TOKEN_OPTION
@pass_app
def list_command(app: AppContext, token_file: Path | None) -> None:
    """List users: name, role, created, disabled, active tokens, last used, agent ids."""
    users = list_users(app.runtime, actor=staff_actor(app, token_file))
    click.echo(
        f"{'NAME':<24} {'ROLE':<16} {'CREATED':<10} {'DISABLED':<10} TOKENS "
        f"{'LAST USED':<16} AGENT IDS"
    )
    for user in users:
        click.echo(
            f"{user.name:<24} {user.role.value:<16} {_day(user.created_at):<10} "
            f"{_day(user.disabled_at):<10} {user.active_tokens:>6} "
            f"{_minute(user.last_used_at):<16} {','.join(user.agent_ids)}".rstrip()
        )


@users_group.command("show")
@click.argument("name")
@TOKEN_OPTION
@pass_app
def show_command(app: AppContext, name: str, token_file: Path | None) -> None:
    """Show user NAME: role, state, tokens in force, last use, agent identifiers."""
    user = show_user(app.runtime, name, actor=staff_actor(app, token_file))
    click.echo(f"user {user.name}  role {user.role.value}")
    click.echo(f"  created {_day(user.created_at)}  disabled {_day(user.disabled_at)}")
    click.echo(f"  tokens in force {user.active_tokens}  last used {_minute(user.last_used_at)}")
    click.echo(f"  agent ids {', '.join(user.agent_ids) or '-'}")


@users_group.command("agent-link")
@click.argument("name")
@click.argument("agent_id")
@TOKEN_OPTION
@pass_app
def agent_link_command(app: AppContext, name: str, agent_id: str, token_file: Path | None) -> None:
    """Link the telephony agent identifier AGENT_ID to agent-role user NAME."""
    link_agent_id(app.runtime, name, agent_id, actor=staff_actor(app, token_file))
    click.echo(f"agent id {agent_id.strip()} linked to {name}")


@users_group.command("agent-unlink")
@click.argument("name")
@click.argument("agent_id")
@TOKEN_OPTION
@pass_app
def agent_unlink_command(
    app: AppContext, name: str, agent_id: str, token_file: Path | None
) -> None:
    """Unlink the telephony agent identifier AGENT_ID from user NAME."""
    unlink_agent_id(app.runtime, name, agent_id, actor=staff_actor(app, token_file))
    click.echo(f"agent id {agent_id.strip()} unlinked from {name}")


@users_group.command("tokens")
@click.argument("name")
@TOKEN_OPTION
@pass_app
def tokens_command(app: AppContext, name: str, token_file: Path | None) -> None:
    """List user NAME's tokens, newest first: id, state, expiry, last use, description."""
    tokens = list_tokens(app.runtime, name, actor=staff_actor(app, token_file))
    now = dt.datetime.now(dt.UTC)
    click.echo(f"{'TOKEN ID':<32} {'STATE':<8} {'EXPIRES':<16} {'LAST USED':<16} DESCRIPTION")
    for token in tokens:
        state = "revoked" if token.revoked_at else ("active" if token.in_force(now) else "expired")
        click.echo(
            f"{token.token_id.hex:<32} {state:<8} {_minute(token.expires_at):<16} "
            f"{_minute(token.last_used_at):<16} {token.description or ''}"
        )
