"""The installation's evidence key: the Ed25519 key that signs evidence packages.

One private key per installation, in a file of its own (``disputes.evidence_key_file``,
default ``<data_dir>/secrets/evidence-key``, PEM PKCS#8, mode 0600), made by
``recarchive init`` when missing and never replaced: every package signed
with it stays verifiable against the public key the installation publishes.
Its fingerprint is the SHA-256 of the public key's DER SubjectPublicKeyInfo,
what ``openssl pkey -pubin -outform DER | sha256sum`` prints.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from recarchive.config import Settings
from recarchive.disputes.package_format import key_fingerprint
from recarchive.errors import ConfigError
from recarchive.private_files import make_private_dir, open_private

#: The key file under ``<data_dir>/secrets/`` unless ``disputes.evidence_key_file`` names one.
KEY_FILE_NAME = "evidence-key"

__all__ = [
    "create_evidence_key",
    "evidence_key_path",
    "key_fingerprint",
    "load_evidence_key",
    "public_key_pem",
]


def evidence_key_path(settings: Settings) -> Path:
    """Where the evidence key is kept (``disputes.evidence_key_file``)."""
    return (
        settings.disputes.evidence_key_file or settings.general.data_dir / "secrets" / KEY_FILE_NAME
    )


def create_evidence_key(path: Path) -> bool:
    """Make a new Ed25519 key at ``path`` (PEM PKCS#8, mode 0600); False when one exists.

    An existing file is never touched: packages signed with it must stay verifiable.
    """
    make_private_dir(path.parent)
    pem = Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    try:
        with open_private(path, "xb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
    except FileExistsError:
        return False
    return True


def load_evidence_key(path: Path) -> Ed25519PrivateKey:
    """The private key in ``path``; :class:`~recarchive.errors.ConfigError` when it is
    missing, unreadable or not an Ed25519 key."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"the evidence key {path} does not exist: run `recarchive init` to make it"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the evidence key {path}: {exc.strerror}") from None
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise ConfigError(f"the evidence key {path} is not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"the evidence key {path} is not an Ed25519 key")
    return key


def public_key_pem(key: Ed25519PrivateKey) -> bytes:
    """The public key as PEM (SubjectPublicKeyInfo): packages carry it, installations publish it."""
    return key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
