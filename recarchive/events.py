"""In-process events: a lower domain says what happened, a higher one acts on it.

Imports point down (docs/architecture.md), yet a few consequences run up:
releasing a hold (retention) lets a pending erasure (privacy) finish. The
lower domain declares a :class:`Topic` and publishes to it; the higher one
provides the handler; the composition root (``recarchive/composition.py``,
called by the CLI and the API when they start) subscribes one to the other.
No domain subscribes itself on import.

Handlers run at once, in the publisher's thread, in the order they were
subscribed; what they return comes back to the publisher, and what they
raise propagates to it. A topic published with no handler logs
``event_unheard``: a process that was not composed is missing behaviour.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Topic"]

logger = logging.getLogger(__name__)

E = TypeVar("E")
R = TypeVar("R")


class Topic(Generic[E, R]):
    """Something that happens in one domain and that others may act on.

    ``E`` is what the publisher tells (one frozen dataclass per topic), ``R``
    what each handler gives back.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._handlers: list[Callable[[E], R]] = []

    def __repr__(self) -> str:
        return f"Topic({self.name!r})"

    @property
    def handlers(self) -> tuple[Callable[[E], R], ...]:
        return tuple(self._handlers)

    def subscribe(self, handler: Callable[[E], R]) -> None:
        """Call ``handler`` with every event published from now on; once, however often given."""
        if handler not in self._handlers:
            self._handlers.append(handler)

    def unsubscribe(self, handler: Callable[[E], R]) -> None:
        """Stop calling ``handler``; nothing happens if it was not subscribed."""
        if handler in self._handlers:
            self._handlers.remove(handler)

    def publish(self, event: E) -> list[R]:
        """Call every handler with ``event``; return their results in order."""
        if not self._handlers:
            logger.error("event_unheard", extra={"topic": self.name})
        return [handler(event) for handler in tuple(self._handlers)]
