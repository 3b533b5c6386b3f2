"""Key-encryption keys in a PKCS#11 hardware security module (python-pkcs11).

The key-encryption key is an AES-256 secret key object on the token,
sensitive and not extractable: it never leaves the module. A data key is
wrapped by the module with AES-GCM (``C_Encrypt`` with ``CKM_AES_GCM``), a
random 12-byte nonce and the associated data of
:func:`~recarchive.crypto.interfaces.wrapping_aad`; the wrapped key is the
nonce followed by the encrypted key and its tag. The key's id is its label
on the token (a new label per rotation: ``recarchive-kek-2026``). The key
object is looked up on every use (a find costs microseconds in the module).

Tests run it against SoftHSM2 (``scripts/test`` installs it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hmac
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11
from pkcs11.mechanisms import GCMParams

from recarchive.crypto.chunked import DATA_KEY_SIZE
from recarchive.crypto.interfaces import WrappedKey, wrapping_aad
from recarchive.errors import (
    KeyEncryptionKeyNotFound,
    KeyProviderUnavailable,
    KeyUnwrapFailed,
)

__all__ = ["Pkcs11KeyProvider", "close_sessions", "create_kek", "ensure_kek"]

_NONCE_SIZE = 12
_T = TypeVar("_T")
#: Errors that say the module, the token or the login is not usable.
_UNAVAILABLE: tuple[type[Exception], ...] = (
    p11.NoSuchToken,
    p11.PinIncorrect,
    p11.PinLenRange,
    p11.TokenNotPresent,
    p11.TokenNotRecognised,
    p11.DeviceError,
    p11.DeviceRemoved,
    p11.DeviceMemory,
    p11.SessionClosed,
    p11.SessionHandleInvalid,
)


class Pkcs11KeyProvider:
    """Wraps data keys with an AES key held in a PKCS#11 token.

    ``module`` is the path of the PKCS#11 library (SoftHSM2:
    ``/usr/lib/softhsm/libsofthsm2.so``), ``token_label`` the token's label,
    ``pin`` the user PIN and ``key_label`` the label of the current
    key-encryption key. Raises
    :class:`~recarchive.errors.KeyProviderUnavailable` when the module, the
    token or the login fails.
    """

    name = "pkcs11"

    def __init__(self, module: str, token_label: str, pin: str, key_label: str) -> None:
        self._token = _TokenRef(module, token_label, pin)
        self._key_label = key_label

    def current_kek_id(self) -> str:
        return self._key_label

    def wrap(self, data_key: bytes, context: bytes) -> WrappedKey:
        if len(data_key) != DATA_KEY_SIZE:
            raise ValueError(f"a data key has {DATA_KEY_SIZE} bytes, got {len(data_key)}")
        nonce = os.urandom(_NONCE_SIZE)
        params = GCMParams(nonce, wrapping_aad(self._key_label, context))

        def encrypt(session: Any) -> bytes:
            key = _find_key(session, self._token.label, self._key_label)
            sealed: bytes = key.encrypt(
                data_key, mechanism=Mechanism.AES_GCM, mechanism_param=params
            )
            return sealed

        sealed = _in_session(self._token, encrypt)
        return WrappedKey(self.name, self._key_label, nonce + sealed)

    def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        if wrapped.provider != self.name:
            raise KeyEncryptionKeyNotFound(
                f"key-encryption key {wrapped.provider}:{wrapped.kek_id} is not in a PKCS#11 token"
            )
        nonce, sealed = wrapped.wrapped[:_NONCE_SIZE], wrapped.wrapped[_NONCE_SIZE:]
        params = GCMParams(nonce, wrapping_aad(wrapped.kek_id, context))

        def decrypt(session: Any) -> bytes:
            key = _find_key(session, self._token.label, wrapped.kek_id)
            try:
                opened: bytes = key.decrypt(
                    sealed, mechanism=Mechanism.AES_GCM, mechanism_param=params
                )
            except _UNAVAILABLE:
                raise
            except p11.PKCS11Error:
                # SoftHSM2 answers a failed GCM tag with CKR_GENERAL_ERROR, others with
                # CKR_ENCRYPTED_DATA_INVALID: either way this key does not open it.
                raise KeyUnwrapFailed() from None
            return opened

        data_key = _in_session(self._token, decrypt)
        if len(data_key) != DATA_KEY_SIZE:
            raise KeyUnwrapFailed("the unwrapped data key has the wrong size")
        return data_key


def create_kek(module: str, token_label: str, pin: str, key_label: str) -> None:
    """Generate a key-encryption key on the token: AES-256, sensitive, not extractable.

    For set-up and tests; raises :class:`~recarchive.errors.KeyProviderUnavailable`
    when the token cannot be opened.
    """

    def generate(session: Any) -> None:
        session.generate_key(
            KeyType.AES,
            256,
            label=key_label,
            store=True,
            template={
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.ENCRYPT: True,
                Attribute.DECRYPT: True,
            },
        )

    _in_session(_TokenRef(module, token_label, pin), generate)


def ensure_kek(module: str, token_label: str, pin: str, key_label: str) -> bool:
    """Generate the key-encryption key ``key_label`` on the token unless it is there; True if made.

    What ``recarchive keys rotate`` does with a new ``encryption.pkcs11_key_label``.
    """
    token = _TokenRef(module, token_label, pin)

    def present(session: Any) -> bool:
        try:
            session.get_key(
                object_class=ObjectClass.SECRET_KEY, key_type=KeyType.AES, label=key_label
            )
        except p11.NoSuchKey:
            return False
        except p11.MultipleObjectsReturned:
            pass  # there, several times: every use will say so
        return True

    if _in_session(token, present):
        return False
    create_kek(module, token_label, pin, key_label)
    return True


def close_sessions() -> None:
    """Log out of every token and close the sessions (opened again on next use)."""
    with _LOCK:
        for session, _pin in _SESSIONS.values():
            with contextlib.suppress(p11.PKCS11Error):  # the session is gone already
                session.close()
        _SESSIONS.clear()


# A PKCS#11 login belongs to the whole process, not to one session (a second
# C_Login fails, and C_Logout on any session logs every one out), and a
# session must not be used by two threads at once: one read-write session per
# token, shared by every provider of the process, used under one lock.
_LOCK = threading.Lock()
_SESSIONS: dict[tuple[str, str], tuple[Any, str]] = {}


@dataclasses.dataclass(frozen=True)
class _TokenRef:
    module: str
    label: str
    pin: str = dataclasses.field(repr=False)


def _in_session(token: _TokenRef, operation: Callable[[Any], _T]) -> _T:
    with _LOCK:
        try:
            return operation(_session(token))
        except _UNAVAILABLE as exc:
            entry = _SESSIONS.pop((token.module, token.label), None)
            if entry is not None:
                with contextlib.suppress(p11.PKCS11Error):
                    entry[0].close()
            raise KeyProviderUnavailable(
                f"PKCS#11 token {token.label!r} is not usable: {type(exc).__name__}"
            ) from exc


def _session(token: _TokenRef) -> Any:
    entry = _SESSIONS.get((token.module, token.label))
    if entry is not None:
        session, pin = entry
        if not hmac.compare_digest(pin.encode(), token.pin.encode()):
            raise KeyProviderUnavailable(
                f"PKCS#11 token {token.label!r} is not usable: PinIncorrect "
                "(another PIN is logged in)"
            )
        return session
    try:
        lib = pkcs11.lib(token.module)
    except (RuntimeError, OSError) as exc:
        raise KeyProviderUnavailable(
            f"cannot load the PKCS#11 module {token.module}: {exc}"
        ) from None
    session = lib.get_token(token_label=token.label).open(user_pin=token.pin, rw=True)
    _SESSIONS[(token.module, token.label)] = (session, token.pin)
    return session


def _find_key(session: Any, token_label: str, label: str) -> Any:
    try:
        return session.get_key(
            object_class=ObjectClass.SECRET_KEY, key_type=KeyType.AES, label=label
        )
    except p11.NoSuchKey:
        raise KeyEncryptionKeyNotFound(
            f"key-encryption key pkcs11:{label} is not on token {token_label!r}"
        ) from None
    except p11.MultipleObjectsReturned:
        raise KeyEncryptionKeyNotFound(
            f"token {token_label!r} holds several AES keys labelled {label!r}"
        ) from None
