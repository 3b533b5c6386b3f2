"""Building the configured key provider, and creating the key file of a new installation."""

from __future__ import annotations

from pathlib import Path

from recarchive.config import Settings
from recarchive.crypto.interfaces import KeyProvider
from recarchive.crypto.keyfile import FileKeyProvider, add_key_encryption_key, create_key_file
from recarchive.errors import ConfigError

#: The key file's name under ``<data_dir>/secrets/`` unless ``encryption.key_file`` names one.
KEY_FILE_NAME = "key-encryption-keys"

__all__ = [
    "key_file_path",
    "new_key_encryption_key",
    "open_key_provider",
    "prepare_key_provider",
]


def key_file_path(settings: Settings) -> Path:
    """The file of key-encryption keys of the ``file`` provider (``encryption.key_file``)."""
    return settings.encryption.key_file or settings.general.data_dir / "secrets" / KEY_FILE_NAME


def open_key_provider(settings: Settings) -> KeyProvider:
    """The key provider the settings name (``encryption.provider``).

    Raises :class:`~recarchive.errors.KeyProviderUnavailable` when the key
    file cannot be read and :class:`~recarchive.errors.ConfigError` when the
    PKCS#11 settings are incomplete. The security module is opened on first
    use.
    """
    encryption = settings.encryption
    if encryption.provider == "pkcs11":
        from recarchive.crypto.hsm import Pkcs11KeyProvider

        if not encryption.pkcs11_token or not encryption.pkcs11_key_label:
            raise ConfigError(
                "encryption.provider = pkcs11 needs encryption.pkcs11_token and "
                "encryption.pkcs11_key_label"
            )
        return Pkcs11KeyProvider(
            encryption.pkcs11_module,
            encryption.pkcs11_token,
            settings.secret("pkcs11_pin") or "",
            encryption.pkcs11_key_label,
        )
    return FileKeyProvider(key_file_path(settings))


def prepare_key_provider(settings: Settings) -> str | None:
    """What ``recarchive init`` does for encryption: a message, or None when disabled.

    With the ``file`` provider the key file is created (one new key, mode
    0600) unless it exists; an existing file is never replaced. Either
    provider is then opened, so that a missing key or module fails ``init``.
    """
    if not settings.encryption.enabled:
        return None
    created = False
    if settings.encryption.provider == "file":
        created = create_key_file(key_file_path(settings))
    provider = open_key_provider(settings)
    kek_id = provider.current_kek_id()
    if settings.encryption.provider == "file":
        state = "created" if created else "exists"
        return f"key-encryption keys in {key_file_path(settings)}: {state} (current {kek_id})"
    return f"key-encryption key {kek_id} on PKCS#11 token {settings.encryption.pkcs11_token}"


def new_key_encryption_key(settings: Settings) -> str | None:
    """Make the configured provider's next key-encryption key current; its id, or None.

    The ``file`` provider appends a new key to the key file (the older ones
    stay, to unwrap what they wrapped). The ``pkcs11`` provider's current key
    is ``encryption.pkcs11_key_label``: the key is generated on the token
    when no key has that label yet; None when it is there already (to rotate,
    set a new label first).
    """
    encryption = settings.encryption
    if encryption.provider == "pkcs11":
        from recarchive.crypto.hsm import ensure_kek

        provider = open_key_provider(settings)  # checks the settings are complete
        made = ensure_kek(
            encryption.pkcs11_module,
            encryption.pkcs11_token or "",
            settings.secret("pkcs11_pin") or "",
            provider.current_kek_id(),
        )
        return provider.current_kek_id() if made else None
    return add_key_encryption_key(key_file_path(settings))
