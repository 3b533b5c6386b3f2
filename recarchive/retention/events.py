"""What retention tells the domains above it (:mod:`recarchive.events`).

- :data:`HOLD_RELEASED`: a release left recordings under no hold, after its
  commit and retag. Handlers return nothing.
- :data:`NIGHTLY_EXPIRY_DONE`: the nightly run has expired what was due and
  has not yet reconciled the store. Each handler returns counts that go into
  the run's audit entry (``nightly.run``), under names of its choosing.

The composition root (``recarchive/composition.py``) subscribes privacy's
handlers: pending erasures resume at both moments.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Mapping

from recarchive.events import Topic
from recarchive.runtime import Runtime

__all__ = ["HOLD_RELEASED", "NIGHTLY_EXPIRY_DONE", "HoldReleased", "NightlyExpiryDone"]


@dataclasses.dataclass(frozen=True)
class HoldReleased:
    runtime: Runtime
    hold_id: uuid.UUID
    #: The recordings the release left under no hold at all.
    freed: tuple[uuid.UUID, ...]


@dataclasses.dataclass(frozen=True)
class NightlyExpiryDone:
    runtime: Runtime
    #: The scheduled moment of this nightly run (aware, UTC).
    scheduled: dt.datetime


HOLD_RELEASED: Topic[HoldReleased, None] = Topic("retention.hold_released")
NIGHTLY_EXPIRY_DONE: Topic[NightlyExpiryDone, Mapping[str, int]] = Topic(
    "retention.nightly_expiry_done"
)
