"""Alembic migrations of the catalogue schema (applied by `recarchive init`)."""
