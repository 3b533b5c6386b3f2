"""Settings of encryption at rest: the ``[encryption]`` section (docs/security.md).

A field of :class:`recarchive.config.Settings`; the key file's default path
is :func:`recarchive.crypto.providers.key_file_path`.
"""

from __future__ import annotations

from typing import Literal

from recarchive.config_base import OptionalPath, _Section


class EncryptionSettings(_Section):
    #: Encrypt new recordings at rest, each under a data key of its own (docs/security.md).
    enabled: bool = False
    #: Keeper of the key-encryption keys: a local key file, or a PKCS#11 security module.
    provider: Literal["file", "pkcs11"] = "file"
    #: The key file (default <data_dir>/secrets/key-encryption-keys), made by `recarchive init`.
    key_file: OptionalPath = None
    pkcs11_module: str = "/usr/lib/softhsm/libsofthsm2.so"
    pkcs11_token: str = ""
    pkcs11_key_label: str = ""
    pkcs11_pin_file: OptionalPath = None
