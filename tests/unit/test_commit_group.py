"""The group a worker commits together: due when full, or when its first recording waited."""

from __future__ import annotations

from typing import Any, cast

from recarchive.ingest.grouping import CommitGroup, StoredRecording


def recording(number: int) -> StoredRecording:
    return cast(StoredRecording, number)  # the group never looks inside


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_group_is_due_when_full_and_gives_its_recordings_in_order() -> None:
    group = CommitGroup(3, wait_s=1.0, clock=Clock())
    assert not group.due()
    for number in (1, 2):
        group.add(recording(number))
        assert not group.due()
    group.add(recording(3))
    assert group.due()
    taken: list[Any] = group.take()
    assert taken == [1, 2, 3]
    assert len(group) == 0
    assert not group.due()


def test_a_group_is_due_once_its_first_recording_has_waited() -> None:
    clock = Clock()
    group = CommitGroup(16, wait_s=1.0, clock=clock)
    group.add(recording(1))
    clock.now += 0.6
    group.add(recording(2))
    assert not group.due()
    clock.now += 0.4  # the first has waited 1.0 s, the second 0.4 s
    assert group.due()
    group.take()
    group.add(recording(3))  # the wait starts again with the next group's first
    assert not group.due()


def test_a_group_of_one_or_less_commits_every_recording() -> None:
    for size in (1, 0, -5):
        group = CommitGroup(size, clock=Clock())
        group.add(recording(1))
        assert group.due()
