"""Progress of a long operation on stderr: a bar on a terminal, a line every few seconds otherwise.

A service reports ``(done, total)`` through a callback (``total`` None when
not known beforehand); :func:`progress` turns that into what the person or
the log behind stderr can read: click's progress bar on a terminal when the
total is known, else
one line at most every :data:`EVERY_S` seconds with the count, the rate and
what remains (``verify: 1200 of 5000 (85/s, about 45 s left)``), and a last
line when it ends. Nothing with ``--quiet``. Results stay on stdout.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import click

#: Seconds between two progress lines when stderr is not a terminal.
EVERY_S = 5.0

Report = Callable[[int, int | None], None]


def _line(label: str, done: int, total: int | None, elapsed: float) -> str:
    rate = done / elapsed if elapsed > 0 else 0.0
    text = f"{label}: {done}" + (f" of {total}" if total is not None else "")
    if rate > 0:
        text += f" ({rate:.0f}/s"
        if total is not None and total > done:
            text += f", about {max(1, round((total - done) / rate))} s left"
        text += ")"
    return text


@contextlib.contextmanager
def progress(
    label: str, *, quiet: bool, clock: Callable[[], float] = time.monotonic
) -> Iterator[Report]:
    """A ``(done, total)`` callback that shows ``label``'s progress on stderr while open."""
    if quiet:
        yield lambda _done, _total: None
        return
    started = clock()
    state: dict[str, Any] = {
        "bar": None, "shown": 0, "last": started, "done": 0, "total": None, "printed": 0,
    }  # fmt: skip
    terminal = sys.stderr.isatty()

    def report(done: int, total: int | None) -> None:
        state["done"], state["total"] = done, total
        if terminal and total:  # a bar; an unknown total gets the lines below
            if state["bar"] is None:
                state["bar"] = click.progressbar(length=total, label=label, file=sys.stderr)
            state["bar"].update(done - state["shown"])
            state["shown"] = done
            return
        now = clock()
        if now - state["last"] >= EVERY_S:
            state["last"], state["printed"] = now, done
            click.echo(_line(label, done, total, now - started), err=True)

    try:
        yield report
    finally:
        if state["bar"] is not None:
            state["bar"].render_finish()
        elif state["printed"] and state["printed"] != state["done"]:  # the count at the end
            click.echo(_line(label, state["done"], state["total"], clock() - started), err=True)
