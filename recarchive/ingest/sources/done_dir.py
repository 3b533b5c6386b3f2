"""Sweeping a spool's ``done_dir``: archived originals kept for a while, then deleted.

With ``after_archive = "move"`` a spool source moves each archived file to
``done_dir / <source reference>`` and sets its modification time to the
moment of the move (:func:`mark_moved`). :func:`sweep_done_dir` deletes, irreversibly:

- every file moved before the cutoff (``done_keep_days`` ago);
- at once, every file whose call the archive has forgotten (erased or
  expired: its work item keeps only a keyed digest of the reference).

Only regular files with a recording's extension are deleted, the kind the
spool ever moves there. Symbolic links are neither followed nor deleted: the
walk holds a directory descriptor at each level (``os.fwalk``), looks at
entries without following links and unlinks by name relative to that
descriptor, so nothing outside ``done_dir`` is reached even if a directory
is swapped for a link during the sweep. Directories left empty are removed;
``done_dir`` itself stays.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import stat
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

from recarchive.private_files import make_private_dir

#: Given references (paths relative to ``done_dir``), the ones whose call was forgotten.
ForgottenRefs = Callable[[Sequence[str]], Collection[str]]

#: References looked up per catalogue query.
_CHUNK = 500


@dataclasses.dataclass
class DoneDirSweep:
    """What one sweep of a ``done_dir`` did (counts only: file names carry numbers)."""

    #: Files deleted because their move is older than ``done_keep_days``.
    aged: int = 0
    #: Younger files deleted because their call was erased or expired.
    forgotten: int = 0
    #: Files kept (younger than ``done_keep_days``, call still archived).
    kept: int = 0
    #: Symbolic links and files that are not recordings: left alone.
    skipped: int = 0
    #: Files that could not be deleted (permissions): tried again next sweep.
    failed: int = 0

    def merge(self, other: DoneDirSweep) -> None:
        for field in dataclasses.fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))


def mark_moved(path: Path) -> None:
    """Record the moment a file was moved into ``done_dir``: its mtime becomes now.

    A rename keeps the mtime the telephony system gave the file, and the
    inode change time cannot be set (so no test could simulate an old move)
    and also changes on chmod or chown; the mtime is what the sweep reads.
    Should the stamp fail, the file keeps its older time and simply goes at
    an earlier sweep: the move itself is not undone.
    """
    with contextlib.suppress(OSError):
        os.utime(path, follow_symlinks=False)


def move_to_done(path: Path, target: Path) -> bool:
    """Move an archived file to ``target`` in done_dir, stamped with the time of the move.

    Returns False when the file is gone (another process acknowledged
    it). A sweep may remove the empty target directory between its
    creation and the move: then it is made again.
    """
    for attempt in range(3):
        make_private_dir(target.parent)
        try:
            shutil.move(path, target)
        except FileNotFoundError:
            if not path.exists():
                return False
            if attempt == 2:
                raise
            continue
        mark_moved(target)
        return True
    return False  # pragma: no cover (the loop returns or raises)


def prune_empty_parents(directory: Path, root: Path) -> None:
    """Remove ``directory`` and its parents up to ``root`` (excluded) while they are empty."""
    root = root.resolve()
    directory = directory.resolve()
    while directory != root and directory.is_relative_to(root):
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent


def sweep_done_dir(
    done_dir: Path,
    *,
    cutoff: float,
    forgotten: ForgottenRefs,
    extensions: Collection[str],
) -> DoneDirSweep:
    """Delete what is due in ``done_dir`` (see the module docstring); return the counts.

    ``cutoff`` is a POSIX timestamp: files moved before it are deleted.
    ``extensions`` are the lowercase extensions of recordings. A missing
    ``done_dir`` is nothing to do.
    """
    sweep = DoneDirSweep()
    top = done_dir.resolve()
    if not top.is_dir():
        return sweep
    for current, subdirs, files, dir_fd in os.fwalk(top, topdown=False, follow_symlinks=False):
        relative = Path(current).relative_to(top)
        young: dict[str, str] = {}  # reference -> name in this directory
        for name in files:
            try:
                info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(info.st_mode) or not _is_recording(name, extensions):
                sweep.skipped += 1
            elif info.st_mtime < cutoff:
                _unlink(name, dir_fd, sweep, "aged")
            else:
                young[(relative / name).as_posix()] = name
        refs = sorted(young)
        for start in range(0, len(refs), _CHUNK):
            chunk = refs[start : start + _CHUNK]
            gone = set(forgotten(chunk))
            for ref in chunk:
                if ref in gone:
                    _unlink(young[ref], dir_fd, sweep, "forgotten")
                else:
                    sweep.kept += 1
        for name in subdirs:  # children were swept first (bottom-up): remove the empty ones
            with contextlib.suppress(OSError):  # a link or a non-empty directory stays
                os.rmdir(name, dir_fd=dir_fd)
    return sweep


def _is_recording(name: str, extensions: Collection[str]) -> bool:
    stem, dot, extension = name.rpartition(".")
    return bool(stem and dot) and not name.startswith(".") and extension.lower() in extensions


def _unlink(name: str, dir_fd: int, sweep: DoneDirSweep, why: str) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return  # another process swept it
    except OSError:
        sweep.failed += 1
        return
    setattr(sweep, why, getattr(sweep, why) + 1)
