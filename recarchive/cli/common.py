"""What every command shares: lazily built settings and runtime, output helpers."""

from __future__ import annotations

import datetime as dt
import functools
import sys
from typing import NoReturn

import click

from recarchive.catalogue.database import sqlite_file
from recarchive.composition import compose
from recarchive.config import Settings, load_settings
from recarchive.installation import installation_paths
from recarchive.logs import configure_logging
from recarchive.private_files import find_loose_modes
from recarchive.runtime import Runtime


def log_level(configured: str, verbosity: int, *, service: bool) -> str:
    """The level of the log lines a command writes to stderr.

    A command that does its work and ends prints its results (stdout) and
    its errors (stderr) itself: it logs WARNING and above, INFO with ``-v``,
    DEBUG with ``-vv``, only ERROR with ``-q``. A long-running service
    (``serve``, ``ingest`` without ``--once``, ``scheduler`` without
    ``--once``) logs at ``general.log_level``, or as ``-v``/``-vv``/``-q`` say.
    """
    if verbosity >= 2:
        return "DEBUG"
    if verbosity == 1:
        return "INFO" if configured != "DEBUG" else "DEBUG"
    if verbosity < 0:
        return "ERROR" if not service else "WARNING"
    return configured if service else ("WARNING" if configured != "ERROR" else "ERROR")


class AppContext:
    """Settings and runtime, built on first use so that ``--help`` needs no config.

    Creating it composes the process (:func:`~recarchive.composition.compose`).
    ``verbosity`` is ``-v`` counted (1, 2), or -1 for ``--quiet``.
    """

    def __init__(self, config_file: str | None, verbosity: int = 0) -> None:
        self.config_file = config_file
        self.verbosity = verbosity
        self.service = False
        compose()

    @functools.cached_property
    def settings(self) -> Settings:
        settings = load_settings(self.config_file)
        self._configure_logging(settings)
        return settings

    def _configure_logging(self, settings: Settings) -> None:
        level = log_level(settings.general.log_level, self.verbosity, service=self.service)
        configure_logging(level, settings.general.log_format)

    @property
    def quiet(self) -> bool:
        """``--quiet``: no progress, no notes; results and errors only."""
        return self.verbosity < 0

    def run_as_service(self) -> None:
        """This command runs until stopped: log at the configured level (see :func:`log_level`)."""
        self.service = True
        if "settings" in self.__dict__:
            self._configure_logging(self.settings)

    @functools.cached_property
    def runtime(self) -> Runtime:
        return Runtime(self.settings)

    def close(self) -> None:
        if "runtime" in self.__dict__:
            self.runtime.close()


pass_app = click.make_pass_decorator(AppContext)

#: Exit statuses, the same for every command (docs/operations.md, "Exit statuses").
EXIT_DONE = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_WORK_REMAINS = 3


def work_remains(message: str) -> NoReturn:
    """End a command that did its work but left some for later: the message, exit status 3."""
    click.echo(message, err=True)
    raise click.exceptions.Exit(EXIT_WORK_REMAINS)


def echo_list_summary(text: str, *, after_rows: bool) -> None:
    """Print a listing's closing summary on stderr, after its rows on stdout.

    The convention of every listing command: rows (the results) on stdout
    only, so that a pipe gets nothing else; the summary on stderr, written
    after stdout is flushed and, when rows were printed, after a blank line,
    so that it never lands inside or next to the last row on a terminal or
    in ``2>&1``.
    """
    sys.stdout.flush()
    if after_rows:
        click.echo("", err=True)
    click.echo(text, err=True)


def warn_loose_modes(app: AppContext) -> int:
    """Print one warning on stderr per existing private path a group or others can reach.

    The paths are those of :func:`~recarchive.installation.installation_paths`;
    each line names the path, its mode, the expected mode and the ``chmod``
    that fixes it. Returns the number of warnings.
    """
    paths = installation_paths(app.settings, sqlite_file(app.runtime.engine))
    findings = find_loose_modes(paths)
    for finding in findings:
        click.echo(f"warning: {finding.describe()}", err=True)
    return len(findings)


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def aware(value: dt.datetime | None, option: str) -> dt.datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise click.BadParameter(
            "give a time zone, e.g. 2026-11-28T02:30:00+02:00", param_hint=option
        )
    return value.astimezone(dt.UTC)


def parse_time(text: str | None, option: str) -> dt.datetime | None:
    """An ISO 8601 time with a zone from an option, as aware UTC; a clear error otherwise."""
    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"not an ISO 8601 time: {text!r}", param_hint=option) from None
    return aware(value, option)
