"""Timing probes: named points in recarchive that report how long each call took, on request.

A benchmark (``scripts/bench_lookup.py``) wants to know where a request's
time goes inside the server: the search, the audit append, the commit, the
token check. Rather than replacing recarchive's functions from outside, the
functions worth timing carry a name here (:func:`timed`), and a process
that wants their times installs one recorder (:func:`install`). The
recorder is called after every call of a timed function with its name and
the elapsed ``time.perf_counter`` seconds, whether the call returned or
raised; what it returned or raised passes through untouched.

With no recorder installed (always, outside a benchmark) a timed function
costs one extra call and one read of a module global. The recorder is
called in whichever thread made the call, so it must be thread-safe
itself. Installing or removing it is one assignment and may happen while
calls run: a call reports to the recorder that was installed when it began.

A leaf module: it imports nothing from recarchive, so that any layer may
time its functions (the bottom row of ``[tool.importlinter]`` in
``pyproject.toml``). The names are for people reading a breakdown; they
name only code, never data.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

#: Called with a timed function's name and the seconds one call of it took.
Recorder = Callable[[str, float], None]

_recorder: Recorder | None = None


def install(recorder: Recorder | None) -> None:
    """Report every later call of a timed function to ``recorder``; None stops reporting."""
    global _recorder
    _recorder = recorder


def timed(name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a function so that its calls are reported as ``name`` (see :func:`install`)."""

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def probe(*args: P.args, **kwargs: P.kwargs) -> R:
            recorder = _recorder
            if recorder is None:
                return function(*args, **kwargs)
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                recorder(name, time.perf_counter() - started)

        return probe

    return decorate
