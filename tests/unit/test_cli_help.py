"""Every option of every ``recarchive`` command says what it does in ``--help``."""

from __future__ import annotations

from collections.abc import Iterator

import click

from recarchive.cli import COMMANDS, cli


def _commands(
    command: click.Command, ctx: click.Context, path: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, (*path, name)
            yield from _commands(sub, ctx, (*path, name))


def test_every_option_of_every_command_has_help() -> None:
    ctx = click.Context(cli)
    walked = list(_commands(cli, ctx, ("recarchive",)))
    assert {path[1] for path, _ in walked if len(path) > 1} == set(COMMANDS)
    missing = [
        f"{' '.join(path)} {'/'.join(option.opts)}"
        for path, command in walked
        for option in command.params
        if isinstance(option, click.Option) and not option.hidden and not option.help
    ]
    assert missing == []
    assert len(walked) > len(COMMANDS)  # the subcommands of the groups were walked too
