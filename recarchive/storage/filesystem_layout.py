"""Where a filesystem store keeps things, and how it touches them safely.

:class:`FilesystemLayout` holds the parts of
:class:`~recarchive.storage.filesystem.FilesystemObjectStore` below the
``ObjectStore`` contract: the paths of an object and of its sidecar, the
refusal of unsafe keys, the translation of ``OSError`` into
:class:`~recarchive.errors.StoreError`, reading and writing sidecars, the
store lock, and making and pruning directories. The layout itself is
described in :mod:`recarchive.storage.filesystem`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from recarchive.errors import (
    BucketNotFound,
    InvalidObjectKey,
    ObjectNotFound,
    StoreAccessDenied,
    StoreError,
)
from recarchive.private_files import PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, make_private_dir
from recarchive.storage.interfaces import ObjectInfo, validate_key

#: Logged under the store's own module, the name operators know it by.
logger = logging.getLogger("recarchive.storage.filesystem")

INTERNAL_DIR = ".recarchive"
#: Name prefixes of the temporary files of writes in ``.recarchive/tmp``: data, then sidecar.
#: :meth:`~recarchive.storage.filesystem.FilesystemObjectStore.sweep_abandoned` removes
#: only files with these prefixes.
DATA_TEMP_PREFIX = "put-"
META_TEMP_PREFIX = "meta-"


def fsync_dir(path: str) -> None:
    """fsync the directory ``path``, so that renames in it survive a crash."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:  # some filesystems cannot fsync a directory
        if exc.errno != errno.EINVAL:
            raise
    finally:
        os.close(fd)


class FilesystemLayout:
    """Paths, sidecars, the lock and error translation of a store rooted at ``root``."""

    root: Path

    # --- paths and errors ---------------------------------------------------

    def _real_root(self) -> str:
        return os.path.realpath(self.root)

    def _paths(self, key: str) -> tuple[str, str]:
        """Absolute paths of the object and its sidecar; refuse unsafe keys."""
        validate_key(key)
        if key.split("/", 1)[0] == INTERNAL_DIR:
            raise InvalidObjectKey(f"object key {key!r} names the store's own {INTERNAL_DIR} dir")
        root = self._real_root()
        obj = os.path.join(root, key)
        meta = os.path.join(root, INTERNAL_DIR, "meta", key + ".json")
        for path in (obj, meta):
            if os.path.realpath(path) != path:
                raise InvalidObjectKey(
                    f"object key {key!r} passes through a symbolic link under the store root"
                )
        return obj, meta

    def _error(self, exc: OSError, key: str | None = None) -> StoreError:
        """Translate an OSError into the StoreError a caller can act on."""
        where = f"object {key!r} in {self.root}" if key else f"store root {self.root}"
        if exc.errno in (errno.EACCES, errno.EPERM):
            return StoreAccessDenied(
                f"permission denied on {where}: check the owner and mode of the directory"
            )
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return StoreError(f"no space left on the device (or quota exceeded) writing {where}")
        if exc.errno == errno.EROFS:
            return StoreError(f"the filesystem holding {where} is read-only")
        return StoreError(f"filesystem error on {where}: {exc.strerror or exc}")

    def _require_root(self) -> None:
        if not os.path.isdir(self.root):
            raise BucketNotFound(
                f"store root {self.root} does not exist or is not a directory; "
                "run `recarchive init` to create it"
            )

    def _not_found(self, key: str) -> StoreError:
        self._require_root()
        return ObjectNotFound(f"no object under key {key!r}")

    def _conflict(self, key: str) -> InvalidObjectKey:
        return InvalidObjectKey(
            f"object key {key!r} conflicts with an existing object: a filesystem store "
            "cannot hold both 'x' and 'x/...'"
        )

    # --- sidecars -----------------------------------------------------------

    def _read_sidecar(self, meta: str, st: os.stat_result) -> dict[str, Any]:
        """The sidecar describing the file with ``st``, or {} if missing or stale."""
        try:
            with open(meta, "rb") as file:
                doc = json.load(file)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return {}
        except ValueError:
            logger.warning("storage.sidecar_unreadable", extra={"sidecar": meta})
            return {}
        except OSError as exc:
            raise self._error(exc) from exc
        if (
            not isinstance(doc, dict)
            or doc.get("size") != st.st_size
            or doc.get("mtime_ns") != st.st_mtime_ns
        ):
            return {}
        return doc

    def _info(self, key: str, st: os.stat_result, doc: Mapping[str, Any]) -> ObjectInfo:
        metadata = doc.get("metadata")
        return ObjectInfo(
            key=key,
            size=st.st_size,
            last_modified=dt.datetime.fromtimestamp(st.st_mtime_ns / 1e9, tz=dt.UTC),
            sha256=doc.get("sha256"),
            content_type=doc.get("content_type"),
            metadata=dict(metadata) if isinstance(metadata, dict) else {},
        )

    def _temp_json(self, doc: Mapping[str, Any]) -> str:
        fd, name = tempfile.mkstemp(dir=self._tmp_dir(), prefix=META_TEMP_PREFIX, suffix=".json")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(json.dumps(doc, sort_keys=True).encode())
                file.flush()
                os.fsync(file.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(name)
            raise
        return name

    def _tmp_dir(self) -> str:
        path = os.path.join(self._real_root(), INTERNAL_DIR, "tmp")
        make_private_dir(path)
        return path

    def _makedirs(self, path: str) -> list[str]:
        """Create ``path`` and missing parents below the root; return those created."""
        root = self._real_root()
        missing: list[str] = []
        while len(path) > len(root) and not os.path.isdir(path):
            missing.append(path)
            path = os.path.dirname(path)
        for directory in reversed(missing):
            with contextlib.suppress(FileExistsError):
                os.mkdir(directory, PRIVATE_DIR_MODE)
            if not os.path.isdir(directory):  # a file is there, or a delete pruned it
                code = errno.ENOTDIR if os.path.lexists(directory) else errno.ENOENT
                raise OSError(code, os.strerror(code), directory)
        return missing

    def _prune(self, directory: str, stop: str) -> None:
        """Remove empty directories from ``directory`` up to (not including) ``stop``."""
        while len(directory) > len(stop) and directory.startswith(stop + os.sep):
            try:
                os.rmdir(directory)
            except OSError:
                return
            directory = os.path.dirname(directory)

    def _prune_for(self, obj: str, meta: str) -> None:
        root = self._real_root()
        self._prune(os.path.dirname(obj), root)
        self._prune(os.path.dirname(meta), os.path.join(root, INTERNAL_DIR, "meta"))

    # --- the store lock -----------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, *, shared: bool = False) -> Iterator[None]:
        """Hold ``.recarchive/lock``: exclusive for renames and deletes, shared for reads.

        flock locks belong to the open file, so threads of one process exclude
        each other as separate processes do. A reader that cannot open the
        lock file (read-only store, never written) goes on without it.
        """
        path = os.path.join(self._real_root(), INTERNAL_DIR, "lock")
        if shared:
            try:
                fd: int | None = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                if exc.errno not in (errno.ENOENT, errno.EACCES, errno.EPERM, errno.EROFS):
                    raise
                fd = None
        else:
            make_private_dir(os.path.dirname(path))
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE_MODE)
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            yield
        finally:
            if fd is not None:
                os.close(fd)  # releases the lock
