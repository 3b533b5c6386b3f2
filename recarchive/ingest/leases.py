"""Honest claims: a lease renewed while its worker works, released as soon as it can be.

A worker claims a work item for ``ingest.lease_s`` seconds
(:func:`~recarchive.ingest.queue.claim`). While it works on the item,
:class:`LeaseKeeper` extends the lease every third of that time, so a short
lease never runs out under a long upload, and a worker that lost the
catalogue (or died) stops extending it: another worker on any host takes the
item over within one lease. A worker that could not put an item back
because the catalogue was down owes that release (:class:`OwedReleases`)
and pays it first thing when the catalogue answers again.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from collections.abc import Collection
from types import TracebackType

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from recarchive.catalogue.database import transaction, utcnow
from recarchive.catalogue.intake import WorkItem, WorkState
from recarchive.errors import RecArchiveError

logger = logging.getLogger(__name__)


class LeaseKeeper:
    """Extends one claim's lease every ``lease_s / 3`` seconds until the block ends.

    ``waiting`` names claims of recordings stored before this one whose group
    is not committed yet: their leases are extended too, so a long recording
    in hand never lets them run out.

    A renewal that fails is logged (once) and tried again at the next tick;
    the lease then runs out by itself if the catalogue stays away. A renewal
    never shortens a lease (a simulated clock may have set a later one).
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        item_id: uuid.UUID,
        worker: str,
        lease_s: float,
        *,
        interval_s: float | None = None,
        waiting: Collection[uuid.UUID] = (),
    ) -> None:
        self._sessions = sessions
        self._item_id = item_id
        #: Claims of stored recordings waiting for their group's commit, renewed alongside.
        self._ids = [item_id, *waiting]
        self._worker = worker
        self._lease = dt.timedelta(seconds=lease_s)
        self._interval = interval_s if interval_s is not None else max(1.0, lease_s / 3)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
        self.renewals = 0

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self._done.set()
        # A renewal blocked on the catalogue is not waited for: when it lands
        # late it changes nothing (the item is no longer claimed by this worker).
        self._thread.join(timeout=2.0)

    def _run(self) -> None:
        failing = False
        while not self._done.wait(self._interval):
            try:
                self.renew()
            except (RecArchiveError, SQLAlchemyError) as exc:
                if not failing:
                    logger.warning(
                        "lease_not_renewed",
                        extra={"work_item_id": str(self._item_id), "error": _message(exc)},
                    )
                failing = True
            else:
                failing = False

    def renew(self) -> bool:
        """Extend the lease now; False when the item is no longer this worker's."""
        until = utcnow() + self._lease
        with transaction(self._sessions) as session:
            result = session.execute(
                update(WorkItem)
                .where(
                    WorkItem.id.in_(self._ids),
                    WorkItem.claimed_by == self._worker,
                    WorkItem.state == WorkState.CLAIMED,
                    WorkItem.lease_until < until,
                )
                .values(lease_until=until)
                .execution_options(synchronize_session=False)
            )
        self.renewals += 1
        return bool(getattr(result, "rowcount", 0))


class OwedReleases:
    """Claims a worker could not put back while the catalogue was down."""

    def __init__(self, worker: str) -> None:
        self.worker = worker
        self.items: set[uuid.UUID] = set()

    def owe(self, item_id: uuid.UUID, exc: BaseException) -> None:
        self.items.add(item_id)
        logger.warning(
            "release_deferred", extra={"work_item_id": str(item_id), "error": _message(exc)}
        )

    def pay(self, sessions: sessionmaker[Session]) -> int:
        """Put the owed items back in the queue, due now; returns how many were still ours.

        Raises what the catalogue raises while it is still down; the debt is kept then.
        """
        if not self.items:
            return 0
        with transaction(sessions) as session:
            result = session.execute(
                update(WorkItem)
                .where(
                    WorkItem.id.in_(list(self.items)),
                    WorkItem.claimed_by == self.worker,
                    WorkItem.state == WorkState.CLAIMED,
                )
                .values(state=WorkState.PENDING, lease_until=None, claimed_by=None)
                .execution_options(synchronize_session=False)
            )
        released = int(getattr(result, "rowcount", 0) or 0)
        self.items.clear()
        if released:
            logger.warning("claims_released", extra={"count": released})
        return released


def _message(exc: BaseException) -> str:
    """A catalogue error's message, or only the class of anything else (no SQL, no values)."""
    return exc.message if isinstance(exc, RecArchiveError) else type(exc).__name__
