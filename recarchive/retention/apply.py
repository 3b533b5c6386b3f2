"""Re-applying the retention policy after it changed.

``retain_until`` is decided at ingest; when ``[[retention.rules]]`` or
``default_days`` change, :func:`apply_policy` recomputes it for every
recording and says how many each change affects (old rule → new rule,
longer or shorter). It is a dry run unless ``execute`` is given. A change
that would shorten the retention of a held recording is refused as a whole:
holds exist precisely so that disputed calls are kept.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from recarchive.access.actors import Actor
from recarchive.access.audit import append_event
from recarchive.access.policy import Action, Forbidden
from recarchive.catalogue.database import transaction, utcnow
from recarchive.catalogue.models import Recording, RecordingStatus
from recarchive.errors import ConflictError
from recarchive.parts import Sessions
from recarchive.retention.policy import RetentionDecision, RetentionPolicy
from recarchive.retention.rules import held_recording_ids, retag
from recarchive.runtime import Runtime

logger = logging.getLogger(__name__)

_CHUNK = 1000


class PolicyChangeRefused(ConflictError):
    """The policy change would shorten the retention of held recordings; nothing changed."""


@dataclasses.dataclass
class PolicyChange:
    executed: bool
    examined: int = 0
    #: ``(old rule, new rule, "longer" | "shorter" | "same")`` → recordings.
    changes: collections.Counter[tuple[str, str, str]] = dataclasses.field(
        default_factory=collections.Counter
    )
    shortened_held: int = 0
    retag_failures: int = 0

    @property
    def changed(self) -> int:
        return sum(self.changes.values())


def apply_policy(
    runtime: Runtime, *, execute: bool = False, actor: Actor | None = None
) -> PolicyChange:
    """Recompute every recording's retention; change it only with ``execute``.

    A change is a person's (``actor``: a privacy officer or an admin); a dry
    run needs no one. Raises :class:`~recarchive.access.policy.Forbidden`
    for an actor who may not, and :class:`PolicyChangeRefused` (before
    changing anything) when a held recording would be kept for a shorter time.
    """
    if execute:
        if actor is None:
            raise Forbidden("applying a retention policy change needs a member of staff")
        actor.require(Action.RETENTION_APPLY)
    policy = RetentionPolicy(runtime.settings.retention)
    report = _survey(runtime, policy)
    if report.shortened_held:
        raise PolicyChangeRefused(
            f"the new policy would shorten the retention of {report.shortened_held} held "
            "recording(s); release their holds first or keep the old periods"
        )
    if not execute or not report.changed:
        return report
    report.executed = True
    held_class = runtime.settings.retention.held_class
    for chunk in _chunks(runtime):
        changed: list[Recording] = []
        with transaction(runtime.sessions) as session:
            for recording in _load(session, chunk):
                decision = _decide(policy, recording)
                if (decision.retain_until, decision.rule) == (
                    recording.retain_until,
                    recording.retention_rule,
                ):
                    continue
                recording.retain_until = decision.retain_until
                recording.retention_rule = decision.rule
                recording.retention_class = decision.retention_class
                changed.append(recording)
        failures = retag(
            runtime.sessions, runtime.store, runtime.settings.retention, changed, utcnow()
        )
        report.retag_failures += len(failures)
    with transaction(runtime.sessions) as session:
        assert actor is not None  # execute: checked above
        append_event(
            session,
            actor=actor.name,
            actor_role=actor.role_name,
            client_addr=actor.client_addr,
            action="retention.apply",
            details={
                "changed": report.changed,
                "changes": [
                    {"from": old, "to": new, "direction": direction, "recordings": count}
                    for (old, new, direction), count in sorted(report.changes.items())
                ],
                "held_class": held_class,
            },
        )
    logger.info("retention_applied", extra={"changed": report.changed})
    return report


def _survey(runtime: Sessions, policy: RetentionPolicy) -> PolicyChange:
    report = PolicyChange(executed=False)
    now = utcnow()
    for chunk in _chunks(runtime):
        with runtime.sessions() as session:
            recordings = _load(session, chunk)
            held = held_recording_ids(session, [r.id for r in recordings], now)
        for recording in recordings:
            report.examined += 1
            decision = _decide(policy, recording)
            if (decision.retain_until, decision.rule) == (
                recording.retain_until,
                recording.retention_rule,
            ):
                continue
            if decision.retain_until > recording.retain_until:
                direction = "longer"
            elif decision.retain_until < recording.retain_until:
                direction = "shorter"
                if recording.id in held:
                    report.shortened_held += 1
            else:
                direction = "same"
            report.changes[(recording.retention_rule, decision.rule, direction)] += 1
    return report


def _decide(policy: RetentionPolicy, recording: Recording) -> RetentionDecision:
    return policy.decide(
        started_at=recording.started_at,
        reasons=recording.reason_codes,
        queue=recording.queue,
        source=recording.source,
    )


def _chunks(runtime: Sessions) -> list[list[uuid.UUID]]:
    with runtime.sessions() as session:
        ids = list(
            session.scalars(
                select(Recording.id)
                .where(Recording.status == RecordingStatus.ACTIVE)
                .order_by(Recording.id)
            )
        )
    return [ids[start : start + _CHUNK] for start in range(0, len(ids), _CHUNK)]


def _load(session: Session, ids: list[uuid.UUID]) -> list[Recording]:
    return list(
        session.scalars(
            select(Recording).options(selectinload(Recording.reasons)).where(Recording.id.in_(ids))
        )
    )
