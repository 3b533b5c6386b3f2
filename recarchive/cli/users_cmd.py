"""``recarchive users``: staff users and their API tokens."""

from __future__ import annotations

import datetime as dt
import getpass
import uuid

import click

from recarchive.access.services import (
    IssuedToken,
    add_user,
    disable_user,
    issue_token,
    list_users,
    revoke_token,
)
from recarchive.cli.common import AppContext, pass_app

by_option = click.option(
    "--by", "actor", help="Staff member making the change (default: login name)."
)
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


@click.group("users")
def users_group() -> None:
    """Staff users, their roles and API tokens."""


@users_group.command("add")
@click.argument("name")
@click.option(
    "--role", required=True, help="qa_trainer, dispute_handler, privacy_officer, auditor or admin."
)
@days_option
@description_option
@by_option
@pass_app
def add_command(
    app: AppContext, name: str, role: str, days: int, description: str | None, actor: str | None
) -> None:
    """Add user NAME with ROLE and print a first API token (shown only once)."""
    issued = add_user(
        app.runtime,
        name,
        role,
        actor=actor or getpass.getuser(),
        token_days=days,
        description=description,
    )
    click.echo(f"user {name} added with role {role}", err=True)
    _show_token(issued)


@users_group.command("token")
@click.argument("name")
@days_option
@description_option
@by_option
@pass_app
def token_command(
    app: AppContext, name: str, days: int, description: str | None, actor: str | None
) -> None:
    """Issue another API token to user NAME (shown only once)."""
    issued = issue_token(
        app.runtime, name, actor=actor or getpass.getuser(), days=days, description=description
    )
    _show_token(issued)


@users_group.command("revoke")
@click.argument("token_id", type=click.UUID)
@by_option
@pass_app
def revoke_command(app: AppContext, token_id: uuid.UUID, actor: str | None) -> None:
    """Revoke the token TOKEN_ID (the 32 hex digits after rca_): it stops working now."""
    user_name = revoke_token(app.runtime, token_id, actor=actor or getpass.getuser())
    click.echo(f"token {token_id} of {user_name} revoked")


@users_group.command("disable")
@click.argument("name")
@by_option
@pass_app
def disable_command(app: AppContext, name: str, actor: str | None) -> None:
    """Disable user NAME and revoke all their tokens."""
    revoked = disable_user(app.runtime, name, actor=actor or getpass.getuser())
    click.echo(f"user {name} disabled; {revoked} token(s) revoked")


def _day(value: dt.datetime | None) -> str:
    return f"{value:%Y-%m-%d}" if value else "-"


@users_group.command("list")
@pass_app
def list_command(app: AppContext) -> None:
    """List users: name, role, created, disabled, active tokens, last used."""
    click.echo(f"{'NAME':<24} {'ROLE':<16} {'CREATED':<10} {'DISABLED':<10} TOKENS LAST USED")
    for user in list_users(app.runtime):
        last_used = f"{user.last_used_at:%Y-%m-%d %H:%M}" if user.last_used_at else "never"
        click.echo(
            f"{user.name:<24} {user.role.value:<16} {_day(user.created_at):<10} "
            f"{_day(user.disabled_at):<10} {user.active_tokens:>6} {last_used}"
        )
