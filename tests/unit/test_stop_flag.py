"""A stop asked for by a signal is taken once, however many signals follow."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from recarchive.lifecycle import StopFlag


@pytest.fixture
def handlers() -> Iterator[None]:
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.mark.usefixtures("handlers")
def test_a_storm_of_signals_sets_the_flag_once_and_raises_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = StopFlag()
    stop.install()
    assert not stop()
    with caplog.at_level("INFO", logger="recarchive.lifecycle"):
        for number in range(500):
            os.kill(os.getpid(), signal.SIGTERM if number % 2 else signal.SIGINT)
    assert stop()
    assert [r.message for r in caplog.records].count("stop_requested") == 1
    stop.sleep(5)  # returns at once: the event is set
