"""Telephony sources the archive pulls recordings from, built from ``[[sources]]``."""

from __future__ import annotations

from recarchive.config import Settings, SpoolSourceSettings
from recarchive.errors import ConfigError
from recarchive.ingest.interfaces import Source


def build_sources(settings: Settings, only: list[str] | None = None) -> dict[str, Source]:
    """One adapter per configured source (or per name in ``only``)."""
    sources: dict[str, Source] = {}
    names = {source.name for source in settings.sources}
    for name in only or []:
        if name not in names:
            known = ", ".join(sorted(names)) or "none configured"
            raise ConfigError(f"no source named {name!r} (sources: {known})")
    for config in settings.sources:
        if only and config.name not in only:
            continue
        if isinstance(config, SpoolSourceSettings):
            from recarchive.ingest.sources.spool import SpoolSource

            sources[config.name] = SpoolSource(
                config, timezone=settings.general.timezone, settle_s=settings.ingest.settle_s
            )
        else:
            raise ConfigError(
                f"source {config.name}: kind {config.kind!r} is not available in this version"
            )
    return sources
