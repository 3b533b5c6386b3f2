"""Ingest: pulling recordings from telephony sources into the archive."""
