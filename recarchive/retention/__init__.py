"""Retention: retain_until, holds, nightly expiry, tombstones, reconciliation."""
