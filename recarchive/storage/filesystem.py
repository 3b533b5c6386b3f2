"""The embedded default object store: one file per object under a root directory.

Layout under ``root``::

    <key>                          the object's bytes (mode 0600)
    .recarchive/meta/<key>.json    sidecar: sha256, content type, metadata, tags
    .recarchive/tmp/               temporary files of writes in progress
    .recarchive/lock               flock taken around renames and deletes

Every directory the store creates is mode 0700 and every file 0600
(:mod:`recarchive.private_files`), whatever the process umask.

A write streams into a temporary file while hashing, is verified, fsynced and
then moved into place with ``os.replace``, so readers see the old object or
the new one, never part of one. The two renames (sidecar, then data) and
deletes are serialised by the lock, among threads and processes alike, so
concurrent writers of one key cannot mix one's data with another's sidecar.
Temporary files of a crashed process stay in ``tmp/`` (never listed) until
:meth:`~FilesystemObjectStore.sweep_abandoned` removes them once their
modification time is old enough (the nightly reconciliation does). The
sidecar records the size and mtime of the data file it describes; a
sidecar that does not match its file (left by a crash between the two
renames) is ignored, so a stale SHA-256 is never reported. Keys that pass
through a symbolic link, or start with ``.recarchive``, are refused. Unlike
S3, a filesystem cannot hold both ``a`` and ``a/b``: the second of them is
refused with :class:`~recarchive.errors.InvalidObjectKey`.

Paths, sidecars, the lock and the translation of ``OSError`` live in
:mod:`recarchive.storage.filesystem_layout`; this module holds the
``ObjectStore`` operations built on them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from recarchive.errors import InvalidObjectKey, ObjectNotFound, StoreAccessDenied, StoreError
from recarchive.private_files import make_private_dir
from recarchive.storage.filesystem_layout import (
    DATA_TEMP_PREFIX,
    INTERNAL_DIR,
    META_TEMP_PREFIX,
    FilesystemLayout,
    fsync_dir,
    logger,
)
from recarchive.storage.interfaces import (
    CHUNK_SIZE,
    ByteRange,
    DeleteResult,
    ObjectInfo,
    SweepResult,
    check_written,
    validate_content_type,
    validate_cutoff,
    validate_expected,
    validate_key,
    validate_metadata,
    validate_tags,
)


class _FileReader:
    """An open object file limited to ``content_range``."""

    def __init__(
        self, store: FilesystemObjectStore, info: ObjectInfo, file: BinaryIO, span: tuple[int, int]
    ) -> None:
        self.info = info
        self.content_range = span
        self._store = store
        self._file = file
        self._remaining = span[1] - span[0] + 1

    def read(self, size: int = -1) -> bytes:
        wanted = self._remaining if size < 0 else min(size, self._remaining)
        try:
            data = self._file.read(wanted)
        except OSError as exc:
            raise self._store._error(exc, self.info.key) from exc
        self._remaining -= len(data)
        return data

    def iter_chunks(self, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        while chunk := self.read(chunk_size):
            yield chunk

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> _FileReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class FilesystemObjectStore(FilesystemLayout):
    """Objects as files under ``root``; see the module docstring for the layout."""

    backend = "filesystem"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # --- the ObjectStore contract -------------------------------------------

    def check(self) -> None:
        """Raise BucketNotFound if the root is missing, StoreAccessDenied if not writable."""
        self._require_root()
        internal = os.path.join(self.root, INTERNAL_DIR)
        for path in (self.root, internal, os.path.join(internal, "tmp")):
            if os.path.isdir(path) and not os.access(path, os.W_OK | os.X_OK):
                raise StoreAccessDenied(f"store directory {path} is not writable")

    def create(self) -> bool:
        """Create the root and its internal directories; True when the root was missing."""
        created = not os.path.isdir(self.root)
        try:
            for sub in ("tmp", "meta"):
                make_private_dir(os.path.join(self.root, INTERNAL_DIR, sub))
        except OSError as exc:
            raise self._error(exc) from exc
        return created

    def put(
        self,
        key: str,
        stream: BinaryIO,
        *,
        size: int | None = None,
        sha256: str | None = None,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        checksum: bool = True,
    ) -> ObjectInfo:
        """Stream to a temp file, verify, fsync, then rename into place (see ``ObjectStore``).

        Errors raised by ``stream`` itself propagate unchanged; in every failure
        the temporary files are removed and an existing object is untouched.
        """
        obj, meta = self._paths(key)
        expected_sha256 = validate_expected(key, size, sha256, checksum=checksum)
        doc: dict[str, Any] = {
            "content_type": validate_content_type(content_type),
            "metadata": validate_metadata(metadata or {}),
            "tags": validate_tags(tags or {}),
        }
        self._require_root()
        try:
            if os.path.isdir(obj) and os.listdir(obj):
                raise self._conflict(key)
        except OSError as exc:
            raise self._error(exc, key) from exc
        temps: list[str] = []
        try:
            try:
                fd, data_tmp = tempfile.mkstemp(dir=self._tmp_dir(), prefix=DATA_TEMP_PREFIX)
            except OSError as exc:
                raise self._error(exc, key) from exc
            temps.append(data_tmp)
            digest, total = self._receive(key, fd, stream, size, checksum)
            check_written(
                key, expected_size=size, expected_sha256=expected_sha256, size=total, sha256=digest
            )
            try:
                st = os.stat(data_tmp)
                doc.update(sha256=digest, size=st.st_size, mtime_ns=st.st_mtime_ns)
                temps.append(self._temp_json(doc))
            except OSError as exc:
                raise self._error(exc, key) from exc
            self._install(key, obj, meta, data_tmp, temps[1])
        except BaseException:
            for name in temps:
                with contextlib.suppress(OSError):
                    os.unlink(name)
            raise
        return self._info(key, st, doc)

    def _receive(
        self, key: str, fd: int, stream: BinaryIO, size: int | None, checksum: bool
    ) -> tuple[str | None, int]:
        """Copy ``stream`` into the open temp file ``fd``; stop once past ``size``."""
        hasher = hashlib.sha256() if checksum else None
        total = 0
        with os.fdopen(fd, "wb") as file:
            while chunk := stream.read(CHUNK_SIZE):
                if hasher is not None:
                    hasher.update(chunk)
                total += len(chunk)
                if size is not None and total > size:
                    break
                try:
                    file.write(chunk)
                except OSError as exc:
                    raise self._error(exc, key) from exc
            try:
                file.flush()
                os.fsync(file.fileno())
            except OSError as exc:
                raise self._error(exc, key) from exc
        return (None if hasher is None else hasher.hexdigest()), total

    def _install(self, key: str, obj: str, meta: str, data_tmp: str, meta_tmp: str) -> None:
        """Rename sidecar then data into place and fsync the directories."""
        created: list[str] = []
        try:
            with self._locked():
                try:
                    created += self._makedirs(os.path.dirname(obj))
                    if os.path.isdir(obj):
                        os.rmdir(obj)  # an empty directory left behind; refused if not empty
                    created += self._makedirs(os.path.dirname(meta))
                    os.replace(meta_tmp, meta)
                    os.replace(data_tmp, obj)
                except OSError:
                    self._prune_for(obj, meta)  # drop directories made for nothing
                    raise
            for directory in {os.path.dirname(p) for p in [obj, meta, *created]}:
                fsync_dir(directory)
        except OSError as exc:
            if isinstance(exc, NotADirectoryError | FileExistsError | IsADirectoryError) or (
                exc.errno == errno.ENOTEMPTY
            ):
                raise self._conflict(key) from exc
            raise self._error(exc, key) from exc

    def _open(self, key: str) -> tuple[BinaryIO, os.stat_result, str]:
        obj, meta = self._paths(key)
        try:
            fd = os.open(obj, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise self._not_found(key) from exc
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise InvalidObjectKey(f"object key {key!r} names a symbolic link") from exc
            raise self._error(exc, key) from exc
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):  # a directory or a special file
                raise self._not_found(key)
            return os.fdopen(fd, "rb"), st, meta
        except BaseException as exc:
            os.close(fd)
            if isinstance(exc, OSError):
                raise self._error(exc, key) from exc
            raise

    def _snapshot(self, key: str) -> tuple[BinaryIO, os.stat_result, dict[str, Any]]:
        """Open the data file and read its sidecar with no rename in between."""
        try:
            with self._locked(shared=True):
                file, st, meta = self._open(key)
                try:
                    return file, st, self._read_sidecar(meta, st)
                except BaseException:
                    file.close()
                    raise
        except OSError as exc:  # the lock file itself
            raise self._error(exc, key) from exc

    def get(self, key: str, *, byte_range: ByteRange | None = None) -> _FileReader:
        """Open the object (or a range of it); the reader keeps the version it opened."""
        file, st, doc = self._snapshot(key)
        try:
            info = self._info(key, st, doc)
            if byte_range is None:
                return _FileReader(self, info, file, (0, st.st_size - 1))
            start, end = byte_range.resolve(st.st_size)
            file.seek(start)
            return _FileReader(self, info, file, (start, end))
        except BaseException:
            file.close()
            raise

    def head(self, key: str) -> ObjectInfo:
        file, st, doc = self._snapshot(key)
        file.close()
        return self._info(key, st, doc)

    def exists(self, key: str) -> bool:
        try:
            self.head(key)
        except ObjectNotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        """Remove the object and its sidecar, then empty parent directories (never the root)."""
        obj, meta = self._paths(key)
        self._require_root()
        try:
            with self._locked():
                with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                    if stat.S_ISREG(os.lstat(obj).st_mode):
                        os.unlink(obj)
                with contextlib.suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError):
                    os.unlink(meta)
                self._prune_for(obj, meta)
        except OSError as exc:
            raise self._error(exc, key) from exc

    def delete_many(self, keys: Iterable[str]) -> DeleteResult:
        """Delete each key; all keys are validated before anything is deleted."""
        wanted = list(dict.fromkeys(keys))
        for key in wanted:
            self._paths(key)
        self._require_root()
        deleted: list[str] = []
        failed: dict[str, str] = {}
        for key in wanted:
            try:
                self.delete(key)
            except StoreError as exc:
                failed[key] = exc.message
            else:
                deleted.append(key)
        return DeleteResult(deleted=tuple(deleted), failed=failed)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects whose key starts with ``prefix``, in key (byte) order.

        Directories are visited with their name plus ``/`` as sort key, which
        yields exactly the lexicographic order of the full keys. Symbolic
        links, special files and names that are not valid keys are skipped.
        """
        self._require_root()
        return self._walk(self._real_root(), "", prefix)

    def _walk(self, directory: str, rel: str, prefix: str) -> Iterator[ObjectInfo]:
        try:
            with os.scandir(directory) as scan:
                entries = [(e.name, e.path, e.is_dir(follow_symlinks=False)) for e in scan]
        except FileNotFoundError:  # removed while listing
            return
        except OSError as exc:
            raise self._error(exc) from exc
        items = sorted(
            (rel + name + ("/" if is_dir else ""), path, is_dir)
            for name, path, is_dir in entries
            if rel or name != INTERNAL_DIR
        )
        for name, path, is_dir in items:
            if is_dir:
                if name.startswith(prefix) or prefix.startswith(name):
                    yield from self._walk(path, name, prefix)
                continue
            if not name.startswith(prefix):
                continue
            try:
                validate_key(name)
                st = os.lstat(path)
            except (InvalidObjectKey, FileNotFoundError):
                continue
            except OSError as exc:
                raise self._error(exc, name) from exc
            if stat.S_ISREG(st.st_mode):
                meta = os.path.join(self._real_root(), INTERNAL_DIR, "meta", name + ".json")
                yield self._info(name, st, self._read_sidecar(meta, st))

    def get_tags(self, key: str) -> dict[str, str]:
        file, _, doc = self._snapshot(key)
        file.close()
        return dict(doc.get("tags") or {})

    def set_tags(self, key: str, tags: Mapping[str, str]) -> None:
        """Rewrite the sidecar with new tags, atomically and under the store lock."""
        new_tags = validate_tags(tags)
        self._paths(key)
        temp = ""
        try:
            with self._locked():
                file, st, meta = self._open(key)
                file.close()
                doc = self._read_sidecar(meta, st) or {
                    "size": st.st_size,
                    "mtime_ns": st.st_mtime_ns,
                }
                doc["tags"] = new_tags
                temp = self._temp_json(doc)
                self._makedirs(os.path.dirname(meta))
                os.replace(temp, meta)
            fsync_dir(os.path.dirname(meta))
        except OSError as exc:
            with contextlib.suppress(OSError):
                if temp:
                    os.unlink(temp)
            raise self._error(exc, key) from exc

    def sweep_abandoned(self, older_than: dt.datetime, *, dry_run: bool = False) -> SweepResult:
        """Delete temp files of writes in ``.recarchive/tmp`` modified before ``older_than``.

        Only regular files named as a write names them (data ``put-*``,
        sidecar ``meta-*``) are considered. A live write keeps writing its
        data file, so its modification time stays recent. Each file is
        looked at and deleted under the exclusive store lock, the one every
        rename into place takes: a write is never caught between its sidecar
        and its data rename, and a file already renamed into place is no
        longer in ``tmp/``.
        """
        cutoff_ns = int(validate_cutoff(older_than).timestamp() * 1_000_000_000)
        self._require_root()
        tmp = os.path.join(self._real_root(), INTERNAL_DIR, "tmp")
        try:
            with os.scandir(tmp) as scan:
                names = sorted(
                    entry.name
                    for entry in scan
                    if entry.name.startswith((DATA_TEMP_PREFIX, META_TEMP_PREFIX))
                )
        except (FileNotFoundError, NotADirectoryError):
            return SweepResult()
        except OSError as exc:
            raise self._error(exc) from exc
        count = size = 0
        try:
            with self._locked(shared=dry_run):
                for name in names:
                    path = os.path.join(tmp, name)
                    with contextlib.suppress(FileNotFoundError):
                        st = os.lstat(path)
                        if not stat.S_ISREG(st.st_mode) or st.st_mtime_ns >= cutoff_ns:
                            continue
                        if not dry_run:
                            os.unlink(path)
                        count += 1
                        size += st.st_size
        except OSError as exc:
            raise self._error(exc) from exc
        if count and not dry_run:
            logger.info("storage.abandoned_swept", extra={"count": count, "size_bytes": size})
        return SweepResult(count=count, size_bytes=size)
