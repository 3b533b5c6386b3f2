"""What must hold after any fault: read from the catalogue and the store themselves.

:func:`archive_state` takes a snapshot; :func:`assert_consistent` checks it:

- nothing duplicated: one recording row per source reference;
- nothing lost: every expected source reference has its row (when given);
- no row without its object, no object without its row;
- no recording left ``deleting`` (an interrupted expiry is settled);
- nothing both a tombstone and a recording; no tombstone whose object is
  still stored;
- no work item stuck ``claimed``;
- the audit chain intact, as ``recarchive audit verify`` says.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import func, select

from recarchive.access.models import AuditEvent
from recarchive.catalogue.intake import WorkItem, WorkState
from recarchive.catalogue.models import Recording, RecordingStatus
from recarchive.config import load_settings
from recarchive.retention.models import Tombstone
from recarchive.runtime import Runtime
from tests.functional.helpers import Result


@dataclasses.dataclass
class ArchiveState:
    """Rows, objects, tombstones, work items and audit entries of one installation."""

    rows: dict[str, tuple[str, str]]  # recording id -> (object key, status)
    source_refs: collections.Counter[tuple[str, str]]
    objects: set[str]
    tombstones: dict[str, str]  # recording id -> object key
    work: collections.Counter[str]  # state -> count
    audit: collections.Counter[str]  # action -> count

    @property
    def active_without_object(self) -> list[str]:
        return sorted(
            rid
            for rid, (key, status) in self.rows.items()
            if status == RecordingStatus.ACTIVE and key not in self.objects
        )

    @property
    def rows_without_object(self) -> list[str]:
        return sorted(rid for rid, (key, _status) in self.rows.items() if key not in self.objects)

    @property
    def objects_without_row(self) -> list[str]:
        keys = {key for key, _status in self.rows.values()}
        return sorted(self.objects - keys)


def archive_state(env: Mapping[str, str]) -> ArchiveState:
    """A snapshot of the installation ``env`` (``RECARCHIVE_*`` settings) describes."""
    runtime = Runtime(load_settings(env=dict(env)))
    try:
        with runtime.sessions() as session:
            rows = {
                str(rid): (key, str(status))
                for rid, key, status in session.execute(
                    select(Recording.id, Recording.object_key, Recording.status)
                )
            }
            refs = collections.Counter(
                (source, ref)
                for source, ref in session.execute(select(Recording.source, Recording.source_ref))
            )
            tombstones = {
                str(rid): key
                for rid, key in session.execute(
                    select(Tombstone.recording_id, Tombstone.object_key)
                )
            }
            work = collections.Counter(
                {
                    str(state): int(count)
                    for state, count in session.execute(
                        select(WorkItem.state, func.count(WorkItem.id)).group_by(WorkItem.state)
                    )
                }
            )
            audit = collections.Counter(
                {
                    action: int(count)
                    for action, count in session.execute(
                        select(AuditEvent.action, func.count(AuditEvent.seq)).group_by(
                            AuditEvent.action
                        )
                    )
                }
            )
        objects = {info.key for info in runtime.store.list("recordings/")}
    finally:
        runtime.close()
    return ArchiveState(rows, refs, objects, tombstones, work, audit)


def assert_consistent(
    state: ArchiveState,
    *,
    expected_refs: Iterable[str] | None = None,
    audit_verify: Callable[[], Result] | None = None,
) -> None:
    """Fail with every broken invariant of ``state`` at once (see the module docstring)."""
    problems: list[str] = []
    duplicated = sorted(ref for ref, count in state.source_refs.items() if count > 1)
    if duplicated:
        problems.append(f"archived more than once: {duplicated[:5]} ({len(duplicated)})")
    if expected_refs is not None:
        wanted = set(expected_refs)
        have = {ref for _source, ref in state.source_refs}
        if wanted - have:
            problems.append(f"lost: {sorted(wanted - have)[:5]} ({len(wanted - have)})")
        if have - wanted:
            problems.append(f"unexpected rows: {sorted(have - wanted)[:5]} ({len(have - wanted)})")
    if state.rows_without_object:
        problems.append(
            f"rows without their object: {state.rows_without_object[:5]} "
            f"({len(state.rows_without_object)}; "
            f"{len(state.active_without_object)} of them active)"
        )
    if state.objects_without_row:
        problems.append(
            f"objects without a row: {state.objects_without_row[:5]} "
            f"({len(state.objects_without_row)})"
        )
    deleting = sorted(r for r, (_k, s) in state.rows.items() if s == RecordingStatus.DELETING)
    if deleting:
        problems.append(f"rows left deleting: {deleting[:5]} ({len(deleting)})")
    buried_alive = sorted(set(state.rows) & set(state.tombstones))
    if buried_alive:
        problems.append(f"tombstone and row both: {buried_alive[:5]} ({len(buried_alive)})")
    ghosts = sorted(key for key in state.tombstones.values() if key in state.objects)
    if ghosts:
        problems.append(f"tombstones whose object is still stored: {ghosts[:5]} ({len(ghosts)})")
    if state.work[WorkState.CLAIMED]:
        problems.append(f"work items stuck claimed: {state.work[WorkState.CLAIMED]}")
    if audit_verify is not None:
        verified = audit_verify()
        if verified.returncode != 0 or "audit log intact" not in verified.stdout:
            problems.append(f"audit verify: {verified.returncode} {verified.stderr.strip()}")
    assert not problems, "\n".join(problems)


def summary_of(value: Any) -> str:
    """A short description of an ArchiveState for assertion messages."""
    if not isinstance(value, ArchiveState):
        return repr(value)
    return (
        f"rows={len(value.rows)} objects={len(value.objects)} tombstones={len(value.tombstones)} "
        f"work={dict(value.work)}"
    )
