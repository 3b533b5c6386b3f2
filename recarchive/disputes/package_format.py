"""The evidence package's format: its file names, and what both its writer and checker compute.

Imports nothing of the archive (only the standard library and
``cryptography``): :mod:`recarchive.disputes.verify` runs without it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import zipfile
import zlib
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)

#: The manifest's ``format``: what this version writes and reads.
FORMAT = "recarchive-evidence/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
TIMESTAMP = "timestamp.tsr"
SUMS = "SHA256SUMS"
CUSTODY = "custody.jsonl"
ANCHOR = "audit-anchor.json"
PUBLIC_KEY = "evidence-public-key.pem"
TSA_CA = "tsa-ca.pem"
README = "README.txt"
#: Files that the manifest cannot list: itself, and what is made from it.
UNLISTED = (MANIFEST, SIGNATURE, TIMESTAMP)
GENESIS_HASH = "0" * 64
#: What reading a damaged zip raises: a failed CRC, broken deflate data, a cut file, a
#: header naming a compression method or zip version that does not exist.
READ_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError)


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclasses.dataclass
class VerificationReport:
    checks: list[Check] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(name, ok, detail))

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [dataclasses.asdict(c) for c in self.checks]}


def canonical_entry_hash(entry: dict[str, Any]) -> str:
    """An audit entry's hash from its exported form (``seq`` and ``hash`` left out).

    SHA-256 over the canonical JSON (keys sorted, no spaces, UTF-8) of the
    entry's content and ``prev_hash``: what ``recarchive.access.audit.entry_hash``
    computes in the archive.
    """
    content = {k: v for k, v in entry.items() if k not in ("seq", "hash")}
    canonical = json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def key_fingerprint(public_key: Ed25519PublicKey) -> str:
    """SHA-256 (hex) of the key's DER SubjectPublicKeyInfo: ``openssl pkey -pubin -outform DER``."""
    der = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def read_public_key(pem: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM; ValueError otherwise."""
    key = load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key
