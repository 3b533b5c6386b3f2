"""Alembic environment: runs on the connection recarchive hands over.

recarchive calls Alembic programmatically (``recarchive init``); the
connection arrives in ``config.attributes["connection"]``. SQLite needs batch
mode to alter tables.
"""

from __future__ import annotations

from alembic import context

from recarchive.catalogue.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("recarchive migrations run through `recarchive init`, not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
