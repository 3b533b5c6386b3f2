"""The draw: which of each agent's candidate calls a sample picks, from its seed alone.

Every candidate gets a rank, the SHA-256 of the seed followed by the
recording's id (both as text: the seed's hex digits, then the id in its
usual form, ``8-4-4-4-12`` lower-case hex digits), and each agent's first
``calls_per_agent`` candidates by rank are picked. The seed is drawn at
random once, before anyone can know the ranks it gives; the rank depends on
nothing else (not on the agent, the order of the rows, the time of the run),
so every agent's calls have the same chance, and anyone holding the seed and
the candidates can repeat the draw::

    printf '%s%s' "$SEED" "$RECORDING_ID" | sha256sum
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable, Mapping

__all__ = ["draw", "new_seed", "rank"]


def new_seed() -> str:
    """A fresh random seed: 128 bits from the operating system's generator, as hex."""
    return secrets.token_hex(16)


def rank(seed: str, recording_id: uuid.UUID) -> str:
    """The candidate's rank in a draw with ``seed``: lower ranks are picked first."""
    return hashlib.sha256(f"{seed}{recording_id}".encode("ascii")).hexdigest()


def draw(
    seed: str, candidates: Mapping[str, Iterable[uuid.UUID]], calls_per_agent: int
) -> dict[str, list[uuid.UUID]]:
    """Each agent's picks: their ``calls_per_agent`` lowest-ranked candidates (all, if fewer)."""
    return {
        agent: sorted(set(ids), key=lambda rid: (rank(seed, rid), str(rid)))[:calls_per_agent]
        for agent, ids in candidates.items()
    }
