"""The contract of a key provider: the keeper of the key-encryption keys (KEKs).

A recording's data key is stored only wrapped by a KEK. A provider wraps
and unwraps data keys and never hands out a KEK. What the catalogue keeps
of a wrapped key is a :class:`WrappedKey`: the provider's name, the id of
the KEK (its version: a provider may hold several, one current) and the
opaque wrapped bytes, so that another provider (a cloud KMS: its name, the
key's ARN or resource name, its ciphertext blob) fits the same columns.

Implementations: :class:`~recarchive.crypto.keyfile.FileKeyProvider` (a
local key file, the embedded default) and
:class:`~recarchive.crypto.hsm.Pkcs11KeyProvider` (a PKCS#11 hardware
security module).
"""

from __future__ import annotations

import dataclasses
from typing import Protocol, runtime_checkable

__all__ = ["KeyProvider", "WrappedKey", "wrapping_aad"]


@dataclasses.dataclass(frozen=True, slots=True)
class WrappedKey:
    """A data key wrapped by a key-encryption key."""

    #: The provider that wrapped it: ``"file"``, ``"pkcs11"``.
    provider: str
    #: The id (and so the version) of the key-encryption key.
    kek_id: str
    #: The wrapped key, opaque to everything but the provider.
    wrapped: bytes


@runtime_checkable
class KeyProvider(Protocol):
    """Wraps and unwraps data keys with key-encryption keys it never gives out.

    ``context`` binds a wrapped key to what it encrypts (the recording's
    id): a wrapped key unwraps only with the context it was wrapped with, so
    wrapped keys cannot be swapped between recordings.

    Every method raises :class:`~recarchive.errors.KeyProviderUnavailable`
    when the key file or the security module cannot be reached.
    """

    #: The provider's name, stored with every wrapped key.
    name: str

    def current_kek_id(self) -> str:
        """The id of the key-encryption key new data keys are wrapped with."""

    def wrap(self, data_key: bytes, context: bytes) -> WrappedKey:
        """Wrap ``data_key`` with the current key-encryption key."""

    def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        """The data key of ``wrapped``.

        Raises :class:`~recarchive.errors.KeyEncryptionKeyNotFound` when the
        provider does not hold the key-encryption key named, and
        :class:`~recarchive.errors.KeyUnwrapFailed` when the key does not
        unwrap (another key-encryption key, another context, altered bytes).
        """


def wrapping_aad(kek_id: str, context: bytes) -> bytes:
    """Associated data of a wrapping: the format, the KEK's id and the context."""
    return b"recarchive data key v1\x00" + kek_id.encode() + b"\x00" + context
