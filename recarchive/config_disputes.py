"""Settings of dispute cases and evidence packages: the ``[disputes]`` section (docs/disputes.md).

A field of :class:`recarchive.config.Settings`.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from recarchive.config_base import OptionalPath, _Section


class DisputesSettings(_Section):
    #: Years a closed case's record is kept before the nightly job deletes it (a tombstone stays).
    keep_closed_years: int = Field(default=3, ge=1, le=30)
    #: The Ed25519 key that signs evidence packages (default <data_dir>/secrets/evidence-key).
    evidence_key_file: OptionalPath = None
    #: An RFC 3161 time-stamping authority's URL; empty: packages carry no timestamp.
    tsa_url: str = Field(default="", pattern=r"^$|^https?://\S+$")
    #: The TSA's CA certificate (PEM): timestamps are checked against it; packages carry it.
    tsa_ca_file: OptionalPath = None
    tsa_timeout_s: float = Field(default=10.0, gt=0, le=300)

    @model_validator(mode="after")
    def _tsa_needs_its_ca(self) -> DisputesSettings:
        if self.tsa_url and self.tsa_ca_file is None:
            raise ValueError("tsa_url needs tsa_ca_file (the TSA's CA certificate, PEM)")
        return self
