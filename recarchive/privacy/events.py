"""What privacy tells the domains above it (:mod:`recarchive.events`).

- :data:`TRAINING_EXCLUDED`: a restriction or an objection to training use
  was recorded (after its commit): recordings it covers may no longer be
  used for training. Handlers return nothing.
- :data:`SUBJECT_ERASED`: an erasure deleted a subject's recordings (after
  the commit of its tombstones), or found some waiting for a hold's release.
  Handlers return nothing.

The composition root (``recarchive/composition.py``) subscribes the QA
workspace's handlers: picked calls it covers leave their samples, and the
training clips of those calls are deleted, at once.
"""

from __future__ import annotations

import dataclasses
import uuid

from recarchive.events import Topic
from recarchive.parts import Archive

__all__ = ["SUBJECT_ERASED", "TRAINING_EXCLUDED", "SubjectErased", "TrainingExcluded"]


@dataclasses.dataclass(frozen=True)
class TrainingExcluded:
    runtime: Archive
    #: What was recorded (``restriction.place``, ``objection.place``), and by whom.
    cause: str
    actor: str
    actor_role: str | None
    client_addr: str | None


TRAINING_EXCLUDED: Topic[TrainingExcluded, None] = Topic("privacy.training_excluded")


@dataclasses.dataclass(frozen=True)
class SubjectErased:
    runtime: Archive
    #: The erased customer (None for an unlinked caller, or a resumed erasure).
    customer_id: str | None
    #: The recordings erased, and those still waiting for a hold's release.
    recording_ids: tuple[uuid.UUID, ...]
    actor: str


SUBJECT_ERASED: Topic[SubjectErased, None] = Topic("privacy.subject_erased")
