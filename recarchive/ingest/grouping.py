"""Group commit: the catalogue rows of several stored recordings in one transaction.

A worker stores recordings one after another. What the catalogue will say
about each (:class:`StoredRecording`: the recording's row, its reasons,
candidates and data key, its work item done) waits in a
:class:`CommitGroup`, and the group is committed in one transaction when it
holds ``ingest.group_commit`` recordings, when its first one has waited
:data:`GROUP_WAIT_S` seconds, when the queue has nothing more to give, or
before the worker stops (:meth:`recarchive.ingest.services.Pipeline.drain`).

Nothing is lost by waiting. A source is acknowledged only after the commit
that holds its recording; until then the object is stored under a key
derived from the work item's id and the item is still claimed. A worker
killed before the commit leaves its claims to run out; the next worker
stores the same objects again under the same keys and commits them. The
commit still checks, recording by recording, that the claim is this
worker's (:func:`~recarchive.ingest.cataloguing.catalogue_recording`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
import uuid
from collections.abc import Callable

from recarchive.catalogue.intake import WorkItem
from recarchive.ingest.cataloguing import Plan, Stored
from recarchive.ingest.interfaces import Discovery, Source
from recarchive.media.interfaces import AudioInfo

#: Longest a stored recording waits for the rest of its group before the group is committed.
GROUP_WAIT_S = 1.0


@dataclasses.dataclass(frozen=True)
class StoredRecording:
    """A recording whose object is stored and whose catalogue rows wait for their commit."""

    item: WorkItem
    source: Source
    discovery: Discovery
    plan: Plan
    #: The audio's facts as probed before it was stored (the catalogue's duration).
    decoded: AudioInfo
    stored: Stored
    #: Size of what the source delivered (the summary's ``bytes_in``).
    bytes_in: int
    #: The clock of the attempt (the release after a failed commit is due from it).
    now: dt.datetime


class CommitGroup:
    """Stored recordings waiting to be committed together, in the order they were stored."""

    def __init__(
        self,
        size: int,
        *,
        wait_s: float = GROUP_WAIT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.size = max(1, size)
        self.wait_s = wait_s
        self._clock = clock
        self._since = 0.0
        self._waiting: list[StoredRecording] = []

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, recording: StoredRecording) -> None:
        if not self._waiting:
            self._since = self._clock()
        self._waiting.append(recording)

    def due(self) -> bool:
        """Full, or its first recording has waited long enough."""
        if not self._waiting:
            return False
        return len(self._waiting) >= self.size or self._clock() - self._since >= self.wait_s

    def item_ids(self) -> list[uuid.UUID]:
        """The work items waiting (their claims must not run out before the commit)."""
        return [waiting.item.id for waiting in self._waiting]

    def take(self) -> list[StoredRecording]:
        """Everything waiting, the group emptied."""
        waiting, self._waiting = self._waiting, []
        return waiting
