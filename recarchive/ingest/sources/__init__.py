"""Telephony sources the archive pulls recordings from, built from ``[[sources]]``."""

from __future__ import annotations

import re
from pathlib import Path

from recarchive.config import (
    _PLACEHOLDERS,
    HttpSourceSettings,
    S3DropSourceSettings,
    Settings,
    SpoolSourceSettings,
)
from recarchive.errors import ConfigError
from recarchive.ingest.interfaces import Source

_SECRET_SUFFIX = re.compile(r"^[A-Z][A-Z0-9_]*$")


def source_secret_variable(source_name: str, suffix: str) -> str:
    """``RECARCHIVE_SOURCE_<NAME>_<SUFFIX>``: NAME upper-cased, ``-`` as ``_``."""
    if not _SECRET_SUFFIX.match(suffix):
        raise ValueError(f"not a secret name suffix: {suffix!r}")
    return f"RECARCHIVE_SOURCE_{source_name.upper().replace('-', '_')}_{suffix}"


def source_secret(settings: Settings, source_name: str, suffix: str) -> str | None:
    """A secret of one source from the environment, or None when it is not set.

    Read from ``RECARCHIVE_SOURCE_<NAME>_<SUFFIX>`` or from the file named by
    ``RECARCHIVE_SOURCE_<NAME>_<SUFFIX>_FILE`` (the variable wins). Raises
    :class:`~recarchive.errors.ConfigError` when the file cannot be read or is
    empty, and when the value is a placeholder in production. The message
    names the variable, never the value.
    """
    variable = source_secret_variable(source_name, suffix)
    value = settings.env.get(variable, "").strip()
    origin = variable
    if not value:
        path_text = settings.env.get(f"{variable}_FILE", "").strip()
        if not path_text:
            return None
        origin = f"{variable}_FILE"
        path = Path(path_text)
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"{origin}: cannot read the secret of source {source_name} from {path}: "
                f"{exc.strerror}"
            ) from None
        if not value:
            raise ConfigError(f"{origin}: secret file {path} is empty")
    if settings.is_production and value.lower() in _PLACEHOLDERS:
        raise ConfigError(
            f"{origin}: the secret of source {source_name} is a placeholder; "
            "refused with general.environment = production"
        )
    return value


def build_sources(settings: Settings, only: list[str] | None = None) -> dict[str, Source]:
    """One adapter per configured source (or per name in ``only``).

    Raises :class:`~recarchive.errors.ConfigError` for an unknown name in
    ``only`` and for a source whose settings or secrets are not usable.
    """
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

            password = None
            if config.cdr_url:
                password = source_secret(settings, config.name, "CDR_PASSWORD")
            sources[config.name] = SpoolSource(
                config,
                timezone=settings.general.timezone,
                settle_s=settings.ingest.settle_s,
                cdr_password=password,
                audio=settings.audio,
            )
        elif isinstance(config, HttpSourceSettings):
            from recarchive.ingest.sources.http import HttpSource

            sources[config.name] = HttpSource.from_settings(config, settings)
        elif isinstance(config, S3DropSourceSettings):
            from recarchive.ingest.sources.s3drop import S3DropSource

            sources[config.name] = S3DropSource.from_settings(config, settings)
        else:
            raise ConfigError(
                f"source {config.name}: kind {config.kind!r} is not available in this version"
            )
    return sources
