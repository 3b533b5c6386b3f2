"""What one source holds at one pass, sorted out; and what the pipeline keeps per source.

A source's ``discover`` yields recordings, problems, what its rules ignore,
what waits for a later pass, CDR rows that came after their recording and,
when it reads incrementally, its bookmark (:mod:`recarchive.ingest.interfaces`).
:func:`collect` sorts them; :class:`SourceStates` hands each source its
committed bookmark once per process and reports an outage of what a source
needs (its CDR database) once when it starts and once when it ends.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

from sqlalchemy.orm import Session, sessionmaker

from recarchive.ingest import queue
from recarchive.ingest.interfaces import (
    Bookmark,
    Discovery,
    Ignored,
    KnownRefs,
    LateCdr,
    Problem,
    Source,
    Waiting,
)
from recarchive.ingest.summary import IngestSummary
from recarchive.lifecycle import Backoff

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Found:
    """Everything one pass over one source yielded."""

    discoveries: list[Discovery] = dataclasses.field(default_factory=list)
    problems: list[Problem] = dataclasses.field(default_factory=list)
    ignored: int = 0
    #: Recordings left for a later pass on purpose (waiting for their CDR row).
    awaiting_cdr: int = 0
    #: Split legs left for a later pass, waiting for their other leg.
    awaiting_leg: int = 0
    #: CDR rows that may belong to recordings archived before they arrived.
    late_cdrs: list[LateCdr] = dataclasses.field(default_factory=list)
    #: To be committed with the work the pass queues (None: the source keeps none).
    bookmark: Bookmark | None = None


def collect(source: Source, now: dt.datetime, known: KnownRefs) -> Found:
    """Run ``source``'s discovery to its end and sort what it yields."""
    found = Found()
    for item in source.discover(now, known):
        if isinstance(item, Discovery):
            found.discoveries.append(item)
        elif isinstance(item, Ignored):
            found.ignored += 1
        elif isinstance(item, Waiting) and item.reason == "partner_leg":
            found.awaiting_leg += 1
        elif isinstance(item, Waiting):
            found.awaiting_cdr += 1
        elif isinstance(item, LateCdr):
            found.late_cdrs.append(item)
        elif isinstance(item, Bookmark):
            found.bookmark = item
        else:
            found.problems.append(item)
    return found


def count_found(name: str, found: Found, summary: IngestSummary) -> None:
    """Count what a pass found at source ``name``; log what it leaves alone or waits for."""
    summary.discovered += len(found.discoveries)
    summary.ignored += found.ignored
    summary.awaiting_cdr += found.awaiting_cdr
    summary.awaiting_leg += found.awaiting_leg
    if found.ignored:
        logger.info("ignored_by_rule", extra={"source": name, "count": found.ignored})
    if found.awaiting_cdr:
        logger.info("awaiting_cdr", extra={"source": name, "count": found.awaiting_cdr})
    if found.awaiting_leg:
        logger.info("awaiting_leg", extra={"source": name, "count": found.awaiting_leg})


class SourceStates:
    """Per process: which sources got their bookmark back, and each source's outage."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self._restored: set[str] = set()
        self._outages: dict[str, Backoff] = {}

    def restore(self, name: str, source: Source) -> None:
        """Before a source's first discovery here: give it the bookmark the catalogue holds."""
        restore = getattr(source, "restore_bookmark", None)
        if restore is not None and name not in self._restored:
            restore(queue.load_bookmark(self.sessions, name))
            self._restored.add(name)

    def outage(self, name: str) -> Backoff:
        """Logs ``paused`` once when what the source needs goes away, ``resumed`` when back."""
        return self._outages.setdefault(name, Backoff(f"source {name}"))
