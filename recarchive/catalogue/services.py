"""Setting up an installation: schema, bucket, and a summary of what exists."""

from __future__ import annotations

import dataclasses
import logging

from sqlalchemy import Engine, func, select

from recarchive.catalogue.database import check_connection, describe_url, session_factory
from recarchive.catalogue.migrate import upgrade_schema
from recarchive.catalogue.models import Customer, Recording
from recarchive.storage.interfaces import ObjectStore

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class InitReport:
    catalogue: str
    revision_before: str | None
    revision_after: str
    store_created: bool

    @property
    def schema_changed(self) -> bool:
        return self.revision_before != self.revision_after


def initialise(engine: Engine, store: ObjectStore) -> InitReport:
    """Create or upgrade the catalogue schema, then create the bucket if missing.

    Running it again on an installation that is current changes nothing.
    Raises :class:`~recarchive.errors.CatalogueUnavailable` or a
    :class:`~recarchive.errors.StoreError` when either cannot be reached.
    """
    check_connection(engine)
    before, after = upgrade_schema(engine)
    created = store.create()
    store.check()
    logger.info(
        "installation_initialised",
        extra={"revision": after, "store": store.backend, "bucket_created": created},
    )
    return InitReport(
        catalogue=describe_url(engine),
        revision_before=before,
        revision_after=after,
        store_created=created,
    )


@dataclasses.dataclass(frozen=True)
class CatalogueSummary:
    recordings: int
    customers: int
    bytes_stored: int


def summarise(engine: Engine) -> CatalogueSummary:
    """Counts of what the catalogue holds."""
    with session_factory(engine)() as session:
        recordings, size = session.execute(
            select(func.count(Recording.id), func.coalesce(func.sum(Recording.size_bytes), 0))
        ).one()
        customers = session.scalar(select(func.count(Customer.customer_id))) or 0
    return CatalogueSummary(recordings=recordings, customers=customers, bytes_stored=int(size))
