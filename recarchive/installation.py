"""The paths of an installation that must be private to its owner.

What the settings name (data, work and secrets directories, the filesystem
store, spool ``done_dir``s) and the SQLite catalogue file with its journals.
``recarchive init`` and ``recarchive config check`` report the loose ones
(:func:`~recarchive.private_files.find_loose_modes`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from recarchive.config import Settings, SpoolSourceSettings

__all__ = ["installation_paths"]


def installation_paths(settings: Settings, catalogue_file: Path | None) -> list[Path]:
    """The paths of an installation that must be private, whether or not they exist yet.

    The data directory, the SQLite catalogue file ``catalogue_file`` (None for
    PostgreSQL) with its directory, ``-wal`` and ``-shm``, the work directory,
    the development secrets, the filesystem store's root and internal
    directories, and the ``done_dir`` of spool sources. The objects themselves
    are not walked (a store may hold millions).
    """
    return list(dict.fromkeys(_installation_paths(settings, catalogue_file)))


def _installation_paths(settings: Settings, catalogue_file: Path | None) -> Iterator[Path]:
    data_dir = settings.general.data_dir
    yield data_dir
    if catalogue_file is not None:
        yield catalogue_file.parent
        for suffix in ("", "-wal", "-shm", "-journal"):
            yield catalogue_file.with_name(catalogue_file.name + suffix)
    yield settings.work_dir
    secrets_dir = data_dir / "secrets"
    yield secrets_dir
    if secrets_dir.is_dir():
        yield from sorted(secrets_dir.iterdir())
    if settings.storage.backend == "filesystem":
        internal = settings.storage_root / ".recarchive"
        yield from (settings.storage_root, internal, internal / "tmp", internal / "meta")
        yield internal / "lock"
    for source in settings.sources:
        if isinstance(source, SpoolSourceSettings) and source.after_archive == "move":
            yield from [source.done_dir] if source.done_dir else []
