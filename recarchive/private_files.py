"""Files and directories that hold personal data or audio are private to their owner.

The one rule: whatever recarchive creates for the catalogue, its WAL, the data
directory, the work directory, the filesystem object store and exports is
created mode 0700 (directories) or 0600 (files), with that mode given to
``mkdir``/``open`` itself, so there is no moment in which another local user
could open it. The process umask is never changed (a library must not);
it can only take bits away from these modes, never add them.

Paths that already exist are left as they are: :func:`find_loose_modes`
reports the ones a group or other users can reach, and ``recarchive init``
and ``recarchive config check`` print those findings with the ``chmod`` that
fixes each one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shlex
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO, Literal

__all__ = [
    "PRIVATE_DIR_MODE",
    "PRIVATE_FILE_MODE",
    "LooseMode",
    "create_private_file",
    "find_loose_modes",
    "make_private_dir",
    "open_private",
    "sweep_stale_files",
]

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
#: Group and other permission bits: any of them set makes a path loose.
_SHARED_BITS = stat.S_IRWXG | stat.S_IRWXO

_OPEN_FLAGS = {
    "wb": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
    "xb": os.O_WRONLY | os.O_CREAT | os.O_EXCL,
    "ab": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
}


def make_private_dir(path: Path | str) -> list[Path]:
    """Create the directory ``path`` and its missing parents, each mode 0700.

    Directories that exist already keep their mode. Returns the directories
    created, outermost first. Raises ``FileExistsError`` when ``path`` or a
    parent exists and is not a directory, and ``OSError`` as ``os.mkdir`` does.
    """
    target = Path(path)
    missing: list[Path] = []
    current = target
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    created: list[Path] = []
    for directory in reversed(missing):
        try:
            os.mkdir(directory, PRIVATE_DIR_MODE)
        except FileExistsError:
            if not directory.is_dir():
                raise
            continue  # made meanwhile by another thread or process
        created.append(directory)
    return created


def create_private_file(path: Path | str) -> bool:
    """Create ``path`` empty with mode 0600 unless it exists; True when it was created.

    Used before another program (SQLite, ffmpeg) first writes a file: a file
    that exists keeps its mode when opened again, so it is created private.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def open_private(path: Path | str, mode: Literal["wb", "xb", "ab"] = "wb") -> BinaryIO:
    """Open ``path`` for binary writing as ``open(path, mode)`` does; created with mode 0600.

    A file that exists already keeps its mode (``wb`` truncates it, ``xb``
    refuses it with ``FileExistsError``, ``ab`` appends).
    """
    fd = os.open(path, _OPEN_FLAGS[mode] | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    try:
        return os.fdopen(fd, mode)
    except BaseException:
        os.close(fd)
        raise


@dataclasses.dataclass(frozen=True)
class LooseMode:
    """An existing path that its group or other users can reach."""

    path: Path
    #: Permission bits found, e.g. 0o644.
    mode: int
    #: Permission bits it should have: 0o700 for a directory, 0o600 otherwise.
    expected: int

    @property
    def chmod_command(self) -> str:
        """The shell command that gives the path its expected mode."""
        return f"chmod {self.expected:o} {shlex.quote(str(self.path))}"

    def describe(self) -> str:
        """One line naming the path, its mode, the expected mode and the fix."""
        return (
            f"{self.path} has mode {self.mode:04o}, expected {self.expected:04o} "
            f"(fix: {self.chmod_command})"
        )


def find_loose_modes(paths: Iterable[Path | str]) -> list[LooseMode]:
    """The given paths that exist and have any group or other permission bit set.

    Each path is checked itself, not what lies below it; missing paths and
    duplicates are skipped. Symbolic links are followed (the target is what
    holds the data). The check reads mode bits, so it holds for root too.
    """
    found: list[LooseMode] = []
    seen: set[str] = set()
    for given in paths:
        path = Path(given)
        if os.path.abspath(path) in seen:
            continue
        seen.add(os.path.abspath(path))
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            continue
        mode = stat.S_IMODE(st.st_mode)
        if mode & _SHARED_BITS:
            expected = PRIVATE_DIR_MODE if stat.S_ISDIR(st.st_mode) else PRIVATE_FILE_MODE
            found.append(LooseMode(path, mode, expected))
    return found


def sweep_stale_files(
    directory: Path, older_than: dt.datetime, *, dry_run: bool = False
) -> tuple[int, int]:
    """Delete the regular files under ``directory`` last written before ``older_than``.

    For scratch directories (the work directory) whose files belong to an
    operation in progress: a file nobody has written since the cutoff was
    left by a process that died (its temporary audio must not outlive the
    call). Symbolic links are neither followed nor deleted; directories stay.
    Returns how many files and bytes were (or, with ``dry_run``, would be)
    deleted. A missing directory holds nothing.
    """
    cutoff = older_than.timestamp()
    count = size = 0
    for root, _dirs, files in os.walk(directory, followlinks=False):
        for name in files:
            path = os.path.join(root, name)
            try:
                info = os.lstat(path)
            except FileNotFoundError:
                continue  # finished and removed meanwhile
            if not stat.S_ISREG(info.st_mode) or info.st_mtime >= cutoff:
                continue
            if not dry_run:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    continue
            count += 1
            size += info.st_size
    return count, size
