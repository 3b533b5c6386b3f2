"""Refused requests on record: who asked, from where, for what, and why not.

Every 401 (no token, or one that is malformed, unknown, wrong, revoked,
expired, or whose session ended) is audited as ``auth.refused``, and every
403 (the role may not, a restriction forbids, a foreign Origin) as
``access.refused``. An entry names the token id when one was presented and
parses, the user and role when known, the method and route template, the
client address (:mod:`recarchive.api.proxies`) and the reason code; never
the token's secret, path values or query values.

So that a flood cannot fill the log, each (client address, reason) gets at
most ``api.refusal_audit_per_minute`` entries per minute; the refusals past
that are counted, and when the minute is over one ``refusals.suppressed``
entry says how many there were. The limiter lives in the process: with
``api.workers`` = N each process allows as many.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Callable

from starlette.types import Scope

from recarchive.access.audit import AuditEntry
from recarchive.access.services import Principal
from recarchive.api.auth import Unauthenticated
from recarchive.catalogue.database import utcnow
from recarchive.errors import RecArchiveError, RefusedError
from recarchive.runtime import Runtime

logger = logging.getLogger(__name__)

WINDOW_S = 60.0
#: Distinct (client, reason) windows tracked at once; beyond that, new clients share
#: one window per reason (client ``*``), so memory and entries stay bounded.
MAX_WINDOWS = 256
OVERFLOW_CLIENT = "*"


@dataclasses.dataclass(frozen=True)
class Refusal:
    """One refused request, as the audit log will name it."""

    action: str  #: ``auth.refused`` (401) or ``access.refused`` (403)
    reason: str
    method: str
    route: str
    client_addr: str | None
    token_id: str | None = None
    user_id: str | None = None
    user_name: str | None = None
    role: str | None = None
    #: What else the entry says (a single sign-on's issuer and claimed role...): ids, no secrets.
    extra: tuple[tuple[str, str], ...] = ()

    def entry(self) -> AuditEntry:
        details = {
            "reason": self.reason,
            "method": self.method,
            "route": self.route,
            "token_id": self.token_id,
            "user_id": self.user_id,
            **dict(self.extra),
        }
        return AuditEntry(
            actor=self.user_name or "anonymous",
            actor_role=self.role,
            action=self.action,
            client_addr=self.client_addr,
            details={key: value for key, value in details.items() if value is not None},
        )


@dataclasses.dataclass
class _Window:
    opened: float  #: monotonic seconds
    opened_at: dt.datetime
    action: str
    recorded: int = 0
    suppressed: int = 0


class RefusalLimiter:
    """Which refusals are audited one by one, and the counts of those that are not.

    Fixed one-minute windows per (client address, reason). :meth:`admit`
    returns the entries to append now: the summaries of windows that have
    closed (of any client), then the refusal's own entry if its window has
    room. Thread-safe; time comes from ``clock`` (monotonic) and ``wall``.
    """

    def __init__(
        self,
        per_window: int,
        *,
        window_s: float = WINDOW_S,
        max_windows: int = MAX_WINDOWS,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.per_window = per_window
        self.window_s = window_s
        self.max_windows = max_windows
        self.clock = clock
        self._wall = wall
        self._windows: dict[tuple[str, str], _Window] = {}
        self._lock = threading.Lock()

    def admit(self, refusal: Refusal) -> list[AuditEntry]:
        with self._lock:
            now = self.clock()
            entries = self._close(now)
            key = (refusal.client_addr or "-", refusal.reason)
            if key not in self._windows and len(self._windows) >= self.max_windows:
                key = (OVERFLOW_CLIENT, refusal.reason)
            window = self._windows.get(key)
            if window is None:
                window = self._windows[key] = _Window(now, self._wall(), refusal.action)
            if window.recorded < self.per_window:
                window.recorded += 1
                entries.append(refusal.entry())
            else:
                window.suppressed += 1
            return entries

    def due(self) -> list[AuditEntry]:
        """The summaries of the windows that have closed (and forgets those windows)."""
        with self._lock:
            return self._close(self.clock())

    def next_close(self) -> float | None:
        """Monotonic time the first window with suppressed refusals closes, if any."""
        with self._lock:
            closes = [w.opened + self.window_s for w in self._windows.values() if w.suppressed]
            return min(closes, default=None)

    def _close(self, now: float) -> list[AuditEntry]:
        entries = []
        for key in [k for k, w in self._windows.items() if now - w.opened >= self.window_s]:
            window = self._windows.pop(key)
            if window.suppressed:
                entries.append(self._summary(key, window))
        return entries

    def _summary(self, key: tuple[str, str], window: _Window) -> AuditEntry:
        client, reason = key
        closed_at = window.opened_at + dt.timedelta(seconds=self.window_s)
        return AuditEntry(
            actor="system",
            action="refusals.suppressed",
            client_addr=None if client in ("-", OVERFLOW_CLIENT) else client,
            details={
                "refused_action": window.action,
                "reason": reason,
                "suppressed": window.suppressed,
                "recorded": window.recorded,
                "from": window.opened_at.isoformat(),
                "to": closed_at.isoformat(),
                **({"clients": "many"} if client == OVERFLOW_CLIENT else {}),
            },
        )


class RefusalAuditor:
    """Appends the entries :class:`RefusalLimiter` lets through, through the audit writer.

    :meth:`refused` blocks until the entries are committed (the refusal is on
    record before it is answered), but a catalogue that cannot take them
    does not change the answer: the failure is logged and the request is
    refused all the same. A timer writes the summary of a window when it
    closes, if no later refusal has done so.
    """

    def __init__(self, runtime: Runtime, limiter: RefusalLimiter) -> None:
        self.runtime = runtime
        self.limiter = limiter
        self._timer: threading.Timer | None = None
        self._timer_lock = threading.Lock()

    def refused(self, refusal: Refusal) -> None:
        self._write(self.limiter.admit(refusal))
        self._schedule()

    def flush(self) -> None:
        """Write the summaries of the windows that have closed."""
        self._write(self.limiter.due())

    def _write(self, entries: list[AuditEntry]) -> None:
        for entry in entries:
            try:
                self.runtime.audit.record(entry)
            except RecArchiveError as exc:
                logger.warning(
                    "refusal_not_audited",
                    extra={"action": entry.action, "error": type(exc).__name__},
                )

    def _schedule(self) -> None:
        closes = self.limiter.next_close()
        if closes is None:
            return
        with self._timer_lock:
            if self._timer is not None and self._timer.is_alive():
                return
            delay = max(0.0, closes - self.limiter.clock()) + 0.05
            self._timer = threading.Timer(delay, self._tick)
            self._timer.daemon = True
            self._timer.start()

    def _tick(self) -> None:
        with self._timer_lock:
            self._timer = None
        self.flush()
        self._schedule()


def _template(scope: Scope) -> str:
    return str(getattr(scope.get("route"), "path", None) or "unmatched")


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    return client[0] if client else None


def unauthenticated(scope: Scope, exc: Unauthenticated) -> Refusal:
    """The ``auth.refused`` record of a 401."""
    refused = exc.refused
    token_id = refused.token_id if refused else None
    user_id = refused.user_id if refused else None
    role = refused.role if refused else None
    return Refusal(
        action="auth.refused",
        reason=exc.reason,
        method=str(scope.get("method")),
        route=_template(scope),
        client_addr=_client(scope),
        token_id=str(token_id) if token_id else None,
        user_id=str(user_id) if user_id else None,
        user_name=refused.user_name if refused else None,
        role=role.value if role else None,
    )


def _reason(exc: RefusedError) -> str:
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str):
        return reason
    name = type(exc).__name__
    if name == "Forbidden":
        return "role_not_allowed"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def forbidden(scope: Scope, exc: RefusedError, principal: Principal | None) -> Refusal:
    """The ``access.refused`` record of a 403 raised by a service or a route."""
    return Refusal(
        action="access.refused",
        reason=_reason(exc),
        method=str(scope.get("method")),
        route=_template(scope),
        client_addr=_client(scope),
        token_id=str(principal.token_id) if principal and principal.token_id else None,
        user_id=str(principal.user_id) if principal else None,
        user_name=principal.user_name if principal else None,
        role=principal.role.value if principal else None,
    )
