"""What long-running processes share: stop on a signal, wait out an outage.

``recarchive ingest``, ``scheduler`` and ``serve`` run for months. They stop
when asked (SIGTERM, SIGINT: :class:`StopFlag`), and they outlive the
catalogue or the store going away for a while: the loop reports the outage
once, waits (:class:`Backoff`: exponential, with jitter, so that many
workers do not come back in step), tries again, and says when the
dependency is back.
"""

from __future__ import annotations

import logging
import random
import signal
import threading
from types import FrameType

logger = logging.getLogger(__name__)


class StopFlag:
    """Set by SIGTERM/SIGINT; the loops check it between units of work."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._asked = False

    def install(self) -> None:
        def handler(signum: int, _frame: FrameType | None) -> None:
            # A second signal (a parent and a service manager both asking, or a
            # signal arriving inside this handler) changes nothing: it returns at
            # once instead of entering the event's lock again from the same thread.
            if self._asked:
                return
            self._asked = True
            logger.info("stop_requested", extra={"signal": signal.Signals(signum).name})
            self.event.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def __call__(self) -> bool:
        return self.event.is_set()

    def sleep(self, seconds: float) -> None:
        self.event.wait(seconds)


class Backoff:
    """Waits between attempts at a dependency that is down: 1 s, 2 s, 4 s … up to ``cap_s``.

    Each wait is drawn uniformly between half and all of the step ("equal
    jitter"): processes that lost the same server at the same moment spread
    out when they come back. :meth:`failed` logs the outage once when it
    starts and returns the wait; :meth:`succeeded` logs its end and resets.
    """

    def __init__(
        self,
        what: str,
        *,
        first_s: float = 1.0,
        cap_s: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        self.what = what
        self.first_s = first_s
        self.cap_s = cap_s
        self.failures = 0
        self._rng = rng or random.Random()

    @property
    def failing(self) -> bool:
        return self.failures > 0

    def failed(self, error: str) -> float:
        """Note one more failed attempt; return how long to wait before the next one."""
        if self.failures == 0:
            logger.error("paused", extra={"task": self.what, "error": error})
        self.failures += 1
        step = min(self.cap_s, self.first_s * 2 ** (self.failures - 1))
        return float(step / 2 + self._rng.uniform(0, step / 2))

    def succeeded(self) -> None:
        """The dependency answered again."""
        if self.failures:
            logger.warning("resumed", extra={"task": self.what, "failed_attempts": self.failures})
        self.failures = 0
