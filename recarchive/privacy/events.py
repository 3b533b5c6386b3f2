"""What privacy tells the domains above it (:mod:`recarchive.events`).

- :data:`TRAINING_EXCLUDED`: a restriction or an objection to training use
  was recorded (after its commit): recordings it covers may no longer be
  used for training. Handlers return nothing.

The composition root (``recarchive/composition.py``) subscribes the QA
workspace's handler: picked calls it covers leave their samples at once.
"""

from __future__ import annotations

import dataclasses

from recarchive.events import Topic
from recarchive.parts import Sessions

__all__ = ["TRAINING_EXCLUDED", "TrainingExcluded"]


@dataclasses.dataclass(frozen=True)
class TrainingExcluded:
    runtime: Sessions
    #: What was recorded (``restriction.place``, ``objection.place``), and by whom.
    cause: str
    actor: str
    actor_role: str | None
    client_addr: str | None


TRAINING_EXCLUDED: Topic[TrainingExcluded, None] = Topic("privacy.training_excluded")
