"""Key-encryption keys in a local key file: the embedded default provider.

The file holds one key-encryption key per line, ``<id> <base64 of 32 bytes>``;
the last line's key wraps new data keys, the others still unwrap the data
keys they wrapped. Lines starting with ``#`` are comments. ``recarchive init``
creates the file with one key, mode 0600 (:func:`create_key_file`).

Losing this file loses every encrypted recording: back it up, apart from
the bucket and the catalogue (a backup of the bucket plus this file reads
every call the catalogue's wrapped keys still open).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from recarchive.crypto.chunked import DATA_KEY_SIZE
from recarchive.crypto.interfaces import WrappedKey, wrapping_aad
from recarchive.errors import (
    KeyEncryptionKeyNotFound,
    KeyProviderUnavailable,
    KeyUnwrapFailed,
)
from recarchive.private_files import make_private_dir, open_private

__all__ = [
    "FileKeyProvider",
    "add_key_encryption_key",
    "create_key_file",
    "key_ids",
    "new_kek_line",
    "retire_key_encryption_keys",
]

_NONCE_SIZE = 12
_KEK_SIZE = 32
_PREAMBLE = (
    "# recarchive key-encryption keys: one '<id> <base64 key>' per line, the last one current.\n"
    "# Losing this file loses every encrypted recording. Back it up, apart from the bucket\n"
    "# and the catalogue; never copy it next to them.\n"
)


def new_kek_line(now: dt.datetime | None = None) -> str:
    """A line for the key file: a new random key-encryption key and its id."""
    day = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%d")
    kek_id = f"file-{day}-{secrets.token_hex(4)}"
    key = base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()
    return f"{kek_id} {key}\n"


def create_key_file(path: Path) -> bool:
    """Create the key file at ``path`` with one new key, mode 0600; False when it exists.

    The directory is created mode 0700 when missing. An existing file is
    never touched: replacing it would lose the archive.
    """
    make_private_dir(path.parent)
    try:
        with open_private(path, "xb") as handle:
            handle.write((_PREAMBLE + new_kek_line()).encode())
            handle.flush()
            os.fsync(handle.fileno())
    except FileExistsError:
        return False
    return True


def key_ids(path: Path) -> list[str]:
    """The ids of the key file's key-encryption keys, oldest first (the last is current)."""
    return list(_read_keys(path))


def add_key_encryption_key(path: Path, now: dt.datetime | None = None) -> str:
    """Append a new key-encryption key to the key file, which makes it current; its id.

    The older keys stay (they still unwrap what they wrapped). The file is
    replaced atomically (a new file, mode 0600, fsynced, renamed over the
    old one): a crash leaves the old file or the new one, never half of it.
    """
    text = _read_text(path)
    _read_keys(path)  # a file that does not parse is never extended
    line = new_kek_line(now)
    _replace(path, text if text.endswith("\n") or not text else text + "\n", line)
    return line.split()[0]


def retire_key_encryption_keys(path: Path, retire: set[str]) -> list[str]:
    """Remove the keys named in ``retire`` from the key file, never the current one.

    Irreversible: a data key still wrapped by a removed key-encryption key is
    lost (the caller checks that none is). Returns the ids removed. Atomic as
    :func:`add_key_encryption_key`.
    """
    current = next(reversed(_read_keys(path)))
    kept, removed = [], []
    for line in _read_text(path).splitlines(keepends=True):
        kek_id = line.split()[0] if line.strip() and not line.startswith("#") else None
        if kek_id is not None and kek_id in retire and kek_id != current:
            removed.append(kek_id)
        else:
            kept.append(line)
    if removed:
        _replace(path, "".join(kept), "")
    return removed


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What changes when the key file is replaced: its inode, size and modification time."""
    try:
        found = path.stat()
    except OSError:
        return None
    return (found.st_ino, found.st_size, found.st_mtime_ns)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not ASCII text"
        raise KeyProviderUnavailable(f"cannot read the key file {path}: {reason}") from None


def _replace(path: Path, text: str, line: str) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open_private(temporary, "xb") as handle:
            handle.write((text + line).encode())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class FileKeyProvider:
    """Wraps data keys with AES-256-GCM under the key-encryption keys of a key file.

    A wrapped key is the 12-byte random nonce followed by the encrypted data
    key and its tag (60 bytes); the associated data binds the key's id and
    the context (:func:`~recarchive.crypto.interfaces.wrapping_aad`).
    Raises :class:`~recarchive.errors.KeyProviderUnavailable` when the file
    cannot be read or holds no valid key.
    """

    name = "file"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._reload()

    def _reload(self) -> None:
        self._stamp = _stamp(self.path)
        self._keys = _read_keys(self.path)
        self._current = next(reversed(self._keys))

    def current_kek_id(self) -> str:
        return self._current

    def wrap(self, data_key: bytes, context: bytes) -> WrappedKey:
        if len(data_key) != DATA_KEY_SIZE:
            raise ValueError(f"a data key has {DATA_KEY_SIZE} bytes, got {len(data_key)}")
        if _stamp(self.path) != self._stamp:
            # Rotated since it was read (``keys rotate`` replaces the file): wrap under
            # the new current key, never under one ``keys retire`` may remove.
            self._reload()
        nonce = os.urandom(_NONCE_SIZE)
        aead = AESGCM(self._keys[self._current])
        sealed = aead.encrypt(nonce, data_key, wrapping_aad(self._current, context))
        return WrappedKey(self.name, self._current, nonce + sealed)

    def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        key = self._keys.get(wrapped.kek_id) if wrapped.provider == self.name else None
        if key is None and wrapped.provider == self.name:
            # Rotated since this process read the file (a running server): read it again.
            self._reload()
            key = self._keys.get(wrapped.kek_id)
        if key is None:
            raise KeyEncryptionKeyNotFound(
                f"key-encryption key {wrapped.provider}:{wrapped.kek_id} is not in {self.path}"
            )
        nonce, sealed = wrapped.wrapped[:_NONCE_SIZE], wrapped.wrapped[_NONCE_SIZE:]
        try:
            data_key = AESGCM(key).decrypt(nonce, sealed, wrapping_aad(wrapped.kek_id, context))
        except (InvalidTag, ValueError):
            raise KeyUnwrapFailed() from None
        if len(data_key) != DATA_KEY_SIZE:
            raise KeyUnwrapFailed("the unwrapped data key has the wrong size")
        return data_key


def _read_keys(path: Path) -> dict[str, bytes]:
    text = _read_text(path)
    keys: dict[str, bytes] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        try:
            kek_id, encoded = line.split()
            key = base64.b64decode(encoded, validate=True)
        except (ValueError, binascii.Error):
            kek_id, key = "", b""
        if len(key) != _KEK_SIZE or kek_id in keys:
            raise KeyProviderUnavailable(
                f"{path} line {number}: not '<id> <base64 of {_KEK_SIZE} bytes>' with a new id"
            )
        keys[kek_id] = key
    if not keys:
        raise KeyProviderUnavailable(f"the key file {path} holds no key-encryption key")
    return keys
