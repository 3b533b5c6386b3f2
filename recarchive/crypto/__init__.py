"""Encryption at rest: the chunked format of encrypted objects and the key providers."""
