"""Dispute cases and the evidence packages made from them (docs/disputes.md)."""
