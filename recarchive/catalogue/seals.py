"""The audit key's two uses: a seal on every audit entry, a signature on every anchor.

Both keys derive from one secret (``audit_key``, never in the catalogue), so
an installation keeps one more secret, not two. See
:mod:`recarchive.access.anchoring` for what they prove.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


@dataclasses.dataclass(frozen=True)
class AuditKeys:
    """The seal key and the anchor signing key, both derived from the audit key secret."""

    seal_key: bytes
    signing_key: Ed25519PrivateKey

    @classmethod
    def from_secret(cls, secret: str) -> AuditKeys:
        def derive(purpose: str) -> bytes:
            return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()

        return cls(
            seal_key=derive("recarchive audit entry seal v1"),
            signing_key=Ed25519PrivateKey.from_private_bytes(
                derive("recarchive audit anchor signing key v1")
            ),
        )

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.signing_key.public_key()

    @property
    def public_bytes(self) -> bytes:
        return self.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def key_id(self) -> str:
        """A short name of the public key: the first 16 hex digits of its SHA-256."""
        return hashlib.sha256(self.public_bytes).hexdigest()[:16]

    def seal(self, entry_hash: str) -> str:
        """The seal of the entry whose hash is ``entry_hash``."""
        return hmac.new(self.seal_key, entry_hash.encode(), hashlib.sha256).hexdigest()

    def seal_matches(self, entry_hash: str, seal: str | None) -> bool:
        return seal is not None and hmac.compare_digest(self.seal(entry_hash), seal)
