"""Lookup: search, metadata and audio for staff, by role and purpose, audited."""
