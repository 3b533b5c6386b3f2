"""Setting up an installation: schema, bucket, and a summary of what exists."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping

from sqlalchemy import Engine, func, select

from recarchive.catalogue.database import check_connection, describe_url, session_factory
from recarchive.catalogue.models import Customer, Recording
from recarchive.storage.anchors import AnchorSink
from recarchive.storage.interfaces import ObjectStore

#: Object tag carrying the retention class (the backstop's lifecycle rules match it).
CLASS_TAG = "retention-class"

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class InitReport:
    catalogue: str
    revision_before: str | None
    revision_after: str
    store_created: bool
    #: Lifecycle expiry rules installed in the bucket (``{class: days}``); None: no lifecycle.
    backstop: Mapping[str, int] | None = None
    #: Where the audit anchors go, and whether that place was created now.
    anchors: str | None = None
    anchors_created: bool = False

    @property
    def schema_changed(self) -> bool:
        return self.revision_before != self.revision_after


def initialise(
    engine: Engine,
    store: ObjectStore,
    *,
    backstop: Mapping[str, int] | None = None,
    identity_hash_key: str | None = None,
    audit_key: str | None = None,
    anchor_sink: AnchorSink | None = None,
) -> InitReport:
    """Create or upgrade the catalogue schema, create the bucket, install the backstop.

    ``backstop`` maps each retention class to the days after which the
    bucket's own lifecycle rules expire objects tagged with it; it is
    installed where the store has lifecycle rules (S3). ``anchor_sink`` is
    where the audit chain's anchors go: created (an Object Lock bucket, a
    file) unless it exists. Running it again on an
    installation that is current changes nothing. Raises
    :class:`~recarchive.errors.CatalogueUnavailable` or a
    :class:`~recarchive.errors.StoreError` when either cannot be reached.
    """
    from recarchive.catalogue.migrate import upgrade_schema  # Alembic: only `init` needs it

    check_connection(engine)
    before, after = upgrade_schema(engine, identity_hash_key=identity_hash_key, audit_key=audit_key)
    created = store.create()
    store.check()
    anchors_created = anchor_sink.create() if anchor_sink is not None else False
    installed: Mapping[str, int] | None = None
    install = getattr(store, "install_expiry_rules", None)
    if backstop is not None and install is not None:
        install(backstop, tag=CLASS_TAG)
        installed = dict(backstop)
    logger.info(
        "installation_initialised",
        extra={"revision": after, "store": store.backend, "bucket_created": created},
    )
    return InitReport(
        catalogue=describe_url(engine),
        revision_before=before,
        revision_after=after,
        store_created=created,
        backstop=installed,
        anchors=anchor_sink.where if anchor_sink is not None else None,
        anchors_created=anchors_created,
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
