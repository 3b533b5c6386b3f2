"""Progress of long commands on stderr (recarchive/cli/progress.py), off a terminal."""

from __future__ import annotations

import pytest

from recarchive.cli.progress import progress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_line_every_five_seconds_with_the_rate_and_what_remains(
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = Clock()
    with progress("verify", quiet=False, clock=clock) as report:
        for done in range(1, 103):
            if done % 5 == 0:
                clock.now += 1  # five a second
            report(done, 102)
    captured = capsys.readouterr()
    assert captured.out == ""  # results only on stdout
    assert captured.err.splitlines() == [
        "verify: 25 of 102 (5/s, about 15 s left)",
        "verify: 50 of 102 (5/s, about 10 s left)",
        "verify: 75 of 102 (5/s, about 5 s left)",
        "verify: 100 of 102 (5/s, about 1 s left)",
        "verify: 102 of 102 (5/s)",  # the count it ended at
    ]


def test_nothing_for_a_short_run_an_unknown_total_reads_plainly_and_quiet_is_silent(
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = Clock()
    with progress("expire", quiet=False, clock=clock) as report:
        report(3, 3)
    assert capsys.readouterr().err == ""
    with progress("expire", quiet=False, clock=clock) as report:
        clock.now += 6
        report(600, None)
    assert capsys.readouterr().err == "expire: 600 (100/s)\n"
    with progress("expire", quiet=True, clock=clock) as report:
        clock.now += 60
        report(6000, 10_000)
    assert capsys.readouterr().err == ""
